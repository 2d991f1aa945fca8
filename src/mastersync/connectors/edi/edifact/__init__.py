"""EDIFACT: reader, validation, records for PRICAT/INVRPT, CONTRL and writers."""
