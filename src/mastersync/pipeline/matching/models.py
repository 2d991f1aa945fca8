"""The matcher of a domain: its configuration with the fitted model, or starting weights."""

from __future__ import annotations

from mastersync.domain.matching import MatchConfig, Matcher, Parameters
from mastersync.domain.matching.compiled import CompiledConfig, compile_config
from mastersync.domain.matching.starting import starting_parameters
from mastersync.domain.problems import ConfigError
from mastersync.ports.matching import MatchRepository

# Compiled configurations by identity: each chunk of ingest should not recompile normalisers.
_COMPILED: dict[int, tuple[MatchConfig, CompiledConfig]] = {}


def compiled(config: MatchConfig) -> CompiledConfig:
    """The configuration compiled once per configuration object."""
    found = _COMPILED.get(id(config))
    if found is None or found[0] is not config:
        found = (config, compile_config(config))
        _COMPILED[id(config)] = found
    return found[1]


def load_matcher(repo: MatchRepository, domain: str, config: MatchConfig) -> tuple[Matcher, str]:
    """A matcher scoring with the domain's fitted model, and which model that is."""
    matcher = Matcher(config, compiled=compiled(config))
    return matcher, use_model(repo, domain, matcher)


def use_model(repo: MatchRepository, domain: str, matcher: Matcher) -> str:
    """Have ``matcher`` score with the domain's fitted model; returns which model that is.

    The model is "fitted at <time>" after ``mastersync dedupe``; "starting" before, or when
    the configuration has changed since the fit (its levels no longer fit the model).
    """
    stored = repo.match_model(domain)
    if stored is not None:
        parameters, fitted_at = stored
        try:
            matcher.use(Parameters.model_validate(parameters))
            return f"fitted at {fitted_at}"
        except ConfigError:
            pass  # fitted for another configuration: starting weights until the next fit
    matcher.use(starting_parameters(matcher.compiled))
    return "starting"
