"""bench.statements reads PostgreSQL's log of a search into its statements' steps."""

from __future__ import annotations

from bench.statements import kind, steps, summary

AT = "2026-12-03 19:08:15.685 UTC [15237]"  # the log line prefix of the bench's servers
LOG = "\n".join(
    [
        f"{AT} LOG:  duration: 0.120 ms  parse <unnamed>: SELECT count(*)",
        "\tFROM t WHERE a = $1",
        f"{AT} LOG:  duration: 0.200 ms  bind <unnamed>: SELECT count(*)",
        "\tFROM t WHERE a = $1",
        f"{AT} DETAIL:  Parameters: $1 = 'x'",
        f"{AT} LOG:  duration: 2.500 ms  execute <unnamed>: SELECT count(*)",
        "\tFROM t WHERE a = $1",
        f"{AT} DETAIL:  Parameters: $1 = 'x'",
        f"{AT} LOG:  duration: 1.000 ms  execute <unnamed>: SELECT count(*) FROM t WHERE a = $2",
        f"{AT} LOG:  duration: 4.000 ms  execute <unnamed>: SELECT r.*, 1 AS capped",
        f"{AT} LOG:  received fast shutdown request",
        "",
    ]
)


def test_a_statements_lines_are_joined_and_its_parameters_left_out() -> None:
    found = steps(LOG)
    assert [(s.phase, s.ms) for s in found] == [
        ("parse", 0.12),
        ("bind", 0.2),
        ("execute", 2.5),
        ("execute", 1.0),
        ("execute", 4.0),
    ]
    assert found[2].sql == "SELECT count(*) FROM t WHERE a = $1"


def test_the_same_statement_for_other_parameters_is_one_kind() -> None:
    found = steps(LOG)
    assert kind(found[2].sql) == kind(found[3].sql) == "SELECT count(*) FROM t WHERE a = $"
    assert kind(found[4].sql).endswith("[attempt]")


def test_the_summary_is_per_search() -> None:
    lines = summary([steps(LOG), []])
    assert "  execute      3.75 ms per search" in lines
    counts = "    1.75 ms per search,   2 runs  SELECT count(*)"
    assert any(line.startswith(counts) for line in lines)
