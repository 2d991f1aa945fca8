"""X12: reader, validation, records for 832/846/888, 997 acknowledgements and writers."""
