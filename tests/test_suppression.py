"""Small-cell suppression audited from the outside (SPEC §2; domain notes "CMS cell-size
suppression": no count of 1-10 printed, nor derivable from other cells, percentages or text).

The auditor below knows nothing of the report code. It reads the JSON a report writes (the
same figures the PDF prints), declares the additive relations a reader could use — written
here from the inventory in docs/suppression.md, not taken from pipeline/reports — and asks,
for every hidden cell, whether a reader could work it out:

- relation by relation: no equality may have exactly one unknown cell that is "<11";
- all relations at once: a linear programme per hidden cell (min and max subject to every
  relation, with "<11" meaning 1..10, "*" meaning 11 or more and an unprinted part meaning
  >= 0). A "<11" cell whose range collapses to one value, or an unprinted part (courses
  without an endpoint, the months outside the report month, ...) that collapses to 1..10, is
  a leak.

Then a hand-built export whose printed cells are worked out by hand, the demo over several
seeds and sizes, and a check that the auditor does find a planted leak.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import textwrap
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import linprog

from pipeline.config import load_config
from pipeline.demo import write_demo
from pipeline.formatting import json_ready
from pipeline.ingest import ingest
from tests.conftest import SUPPRESS

K = 10
SMALL, STAR = "<11", "*"
LOAD_DAY = date(2026, 11, 28)


# ---------------------------------------------------------------------------------------------
# The auditor


PRIME = (1 << 61) - 1


class RowSpace:
    """The row space of an integer matrix, by exact elimination modulo a large prime (the
    relations have small integer coefficients), to ask: is this linear form a combination of
    the rows, i.e. constant wherever the rows are? A row is {column: coefficient}."""

    def __init__(self, lines: list[dict[int, float]]) -> None:
        self.pivots: dict[int, dict[int, int]] = {}
        for line in lines:
            row = self._reduce(_integer_row(line))
            if not row:
                continue
            pivot = min(row)
            inverse = pow(row[pivot], PRIME - 2, PRIME)
            row = {i: v * inverse % PRIME for i, v in row.items()}
            for other in self.pivots.values():
                if pivot in other:
                    factor = other[pivot]
                    for i, v in row.items():
                        value = (other.get(i, 0) - factor * v) % PRIME
                        if value:
                            other[i] = value
                        else:
                            other.pop(i, None)
            self.pivots[pivot] = row

    def _reduce(self, row: dict[int, int]) -> dict[int, int]:
        for col in sorted(c for c in row if c in self.pivots):
            if col not in row:
                continue
            factor = row[col]
            for i, v in self.pivots[col].items():
                value = (row.get(i, 0) - factor * v) % PRIME
                if value:
                    row[i] = value
                else:
                    row.pop(i, None)
        return row

    def contains(self, line: dict[int, float]) -> bool:
        return not self._reduce(_integer_row(line))


def _integer_row(line: dict[int, float]) -> dict[int, int]:
    row = {}
    for i, value in sorted(line.items()):
        if abs(value) <= 1e-12:
            continue
        assert abs(value - round(value)) < 1e-9, "relations have integer coefficients"
        row[i] = round(value) % PRIME
    return row


def _sparse(lines: list[dict[int, float]], width: int) -> sparse.csr_array:
    """Rows {column: coefficient} as a sparse matrix (the solver's input)."""
    cells = [(r, c, v) for r, line in enumerate(lines) for c, v in line.items()]
    rows, columns, values = zip(*cells, strict=True) if cells else ((), (), ())
    return sparse.csr_array((np.array(values, dtype=float), (np.array(rows, dtype=int),
                                                              np.array(columns, dtype=int))),
                            shape=(len(lines), width))


class Audit:
    """Cells (known, "<11", "*", unprinted) and linear relations among them."""

    def __init__(self) -> None:
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.kind: list[str] = []
        self.name: list[str] = []
        self.eqs: list[dict[int, int]] = []
        self.ges: list[dict[int, int]] = []
        self.direct: list[str] = []  # leaks visible without any arithmetic
        self.quantities: dict[str, int] = {}

    # cells
    def cell(self, value: Any, name: str) -> int:
        if isinstance(value, bool):
            raise TypeError(f"{name}: a boolean is not a count")
        if isinstance(value, int):
            lo, hi, kind = value, value, "known"
            if 1 <= value <= K:
                self.direct.append(f"{name}: {value} printed")
        elif value == SMALL:
            lo, hi, kind = 1, K, "small"
        elif value == STAR:
            lo, hi, kind = K + 1, math.inf, "star"
        elif value is None:
            lo, hi, kind = 0, math.inf, "free"
        else:
            raise ValueError(f"{name}: unexpected printed count {value!r}")
        self.lo.append(lo)
        self.hi.append(hi)
        self.kind.append(kind)
        self.name.append(name)
        return len(self.lo) - 1

    def free(self, name: str) -> int:
        return self.cell(None, name)

    def same(self, quantity: str, var: int) -> int:
        """One quantity printed in several places: every print is the same number."""
        if quantity in self.quantities:
            self.equal(self.quantities[quantity], var)
        else:
            self.quantities[quantity] = var
        return var

    def q(self, quantity: str) -> int:
        """A named quantity (unprinted until some section prints it)."""
        if quantity not in self.quantities:
            self.quantities[quantity] = self.free(quantity)
        return self.quantities[quantity]

    # relations
    def equal(self, a: int, b: int) -> None:
        if a != b:
            self.eqs.append({a: 1, b: -1})

    def total(self, whole: int, parts: list[int]) -> None:
        row: dict[int, int] = {whole: 1}
        for p in parts:
            row[p] = row.get(p, 0) - 1
        self.eqs.append({v: c for v, c in row.items() if c})

    def part(self, whole: int, part: int, name: str) -> int:
        """whole = part + rest (rest unprinted); returns rest."""
        rest = self.free(name)
        self.total(whole, [part, rest])
        return rest

    def at_least(self, big: list[int], small: list[int]) -> None:
        row: dict[int, int] = {}
        for b in big:
            row[b] = row.get(b, 0) + 1
        for s in small:
            row[s] = row.get(s, 0) - 1
        self.ges.append(row)

    def rate(self, r: dict[str, Any], name: str) -> tuple[int, int]:
        """A printed rate dict: numerator and denominator cells, and the rate itself (a rate
        printed beside a hidden count would give it away)."""
        num = self.cell(r["numerator"], f"{name} numerator")
        den = self.cell(r["denominator"], f"{name} denominator")
        if r.get("rate") is not None and not (self.kind[num] == self.kind[den] == "known"):
            self.direct.append(f"{name}: rate printed beside a hidden count")
        if r.get("rate") is not None and self.kind[num] == self.kind[den] == "known":
            assert r["rate"] == pytest.approx(self.lo[num] / self.lo[den]), name
        self.part(den, num, f"{name} complement")
        return num, den

    def share(self, share: Any, count: int, name: str) -> None:
        if share is not None and self.kind[count] != "known":
            self.direct.append(f"{name}: share printed beside a hidden count")

    # the audit
    def leaks(self) -> list[str]:
        found = list(self.direct)
        known = [k == "known" for k in self.kind]
        for row in self.eqs:
            unknown = [v for v in row if not known[v]]
            if len(unknown) == 1 and self.kind[unknown[0]] == "small":
                found.append(f"{self.name[unknown[0]]}: the only unknown of a relation")
        found += self._lp_leaks()
        return found

    def _lp_leaks(self) -> list[str]:
        """All relations at once: the cells that are constant on the whole feasible set.

        Per connected group of unknown cells: find the inequalities (bounds included) that
        hold with equality at every feasible point — repeatedly maximise the slacks of the
        undecided ones (a linear programme); those that never get slack are implicit
        equalities — then a cell is determined when it is constant on the affine hull of
        the feasible set (a combination of all the equalities, implicit ones included).
        The groups share no cell, so one programme over all of them side by side maximises
        each group's slacks at once (the objective is a sum over the groups).
        """
        n = len(self.lo)
        known = [k == "known" for k in self.kind]
        parent = list(range(n))

        def root(v: int) -> int:
            while parent[v] != v:
                parent[v] = parent[parent[v]]
                v = parent[v]
            return v

        rows = [(r, True) for r in self.eqs] + [(r, False) for r in self.ges]
        for row, _ in rows:
            free = [v for v in row if not known[v]]
            for a in free[1:]:
                parent[root(a)] = root(free[0])
        groups: dict[int, list[int]] = {}
        for v in range(n):
            if not known[v]:
                groups.setdefault(root(v), []).append(v)
        rows_of_group: dict[int, list[tuple[dict[int, int], bool]]] = {}
        for row, equality in rows:
            free = [v for v in row if not known[v]]
            if free:
                rows_of_group.setdefault(root(free[0]), []).append((row, equality))
        systems = [GroupSystem(self, members, rows_of_group.get(group, []), known)
                   for group, members in groups.items()]
        with_cells = [s for s in systems if s.size]
        solved = dict(zip(map(id, with_cells), self._implicit_equalities(with_cells),
                          strict=True))
        leaks = []
        for system in systems:
            undecided, point = solved.get(id(system), ([], np.zeros(0)))
            leaks += self._group_leaks(system, undecided, point)
        return leaks

    def _implicit_equalities(self, systems: list[GroupSystem]
                             ) -> list[tuple[list[int], np.ndarray]]:
        """Per system: its inequalities that no feasible point leaves slack (their indices),
        and a feasible point."""
        stacked = StackedSystems(systems)
        size, count = stacked.size, len(stacked.h)
        undecided = list(range(count))
        point = np.zeros(size)
        while undecided and size:
            result = stacked.maximise_slacks(undecided)
            culprits = [] if result.status == 0 else [
                [self.name[v] for v in s.core][:5] for s in systems
                if StackedSystems([s]).maximise_slacks(list(range(len(s.h)))).status != 0]
            assert result.status == 0, ("the printed cells contradict the relations: "
                                        f"{culprits[0] if culprits else '?'}", result.message)
            point = result.x[:size]
            strict = {row_index for j, row_index in enumerate(undecided)
                      if result.x[size + j] > 1e-7}
            if not strict:
                break
            undecided = [row_index for row_index in undecided if row_index not in strict]
        columns, rows = stacked.columns, stacked.rows
        return [([r - rows[k] for r in undecided if rows[k] <= r < rows[k + 1]],
                 point[columns[k]:columns[k + 1]]) for k in range(len(systems))]

    def _group_leaks(self, system: GroupSystem, undecided: list[int],
                     point: np.ndarray) -> list[str]:
        """One group of connected unknown cells (see _lp_leaks): the cells, and the parts
        taken out, constant on the affine hull of its feasible set."""
        space = RowSpace([*system.a_eq, *(system.g[row_index] for row_index in undecided)])
        leaks = []
        for v in system.core:
            if not space.contains({system.index[v]: 1.0}):
                continue
            value = round(float(point[system.index[v]]))
            if self.kind[v] == "small" or (self.kind[v] == "free" and 1 <= value <= K):
                leaks.append(f"{self.name[v]}: derivable as {value}")
        for v, (row, coefficient) in system.peeled.items():
            rest = {u: -c / coefficient for u, c in row.items() if u != v}
            line, constant = system.line_of(rest)
            if not space.contains(line):
                continue
            value = round(sum(c * float(point[i]) for i, c in line.items()) + constant)
            if 1 <= value <= K:
                leaks.append(f"{self.name[v]}: derivable as {value}")
        return leaks


class GroupSystem:
    """One group of connected unknown cells as a linear system over its core cells x:
    a_eq x = b_eq and g x <= h (the cells' bounds included), rows as {column: coefficient}."""

    def __init__(self, audit: Audit, members: list[int],
                 rows: list[tuple[dict[int, int], bool]], known: list[bool]) -> None:
        self.lo = audit.lo
        # An unprinted part found in one equality only (a rate's complement, "the other
        # months") is taken out: the equality becomes "the rest >= 0", and the part is
        # determined when the linear form it equals is. This keeps the systems small.
        uses: dict[int, int] = {}
        for row, eq in rows:
            for v in row:
                if not known[v]:
                    uses[v] = uses.get(v, 0) + (1 if eq else 2)
        self.peeled: dict[int, tuple[dict[int, int], int]] = {}
        reduced_rows = []
        for row, eq in rows:
            single = [v for v in row if eq and audit.kind[v] == "free" and uses[v] == 1]
            if single:
                v = single[0]
                self.peeled[v] = (row, row[v])
                rest = {u: c for u, c in row.items() if u != v}
                # v = -(rest)/c_v >= 0
                reduced_rows.append(({u: -c * row[v] for u, c in rest.items()}, False))
            else:
                reduced_rows.append((row, eq))
        self.core = [v for v in members if v not in self.peeled]
        self.size = len(self.core)
        self.index = {v: i for i, v in enumerate(self.core)}
        self.a_eq: list[dict[int, float]] = []
        self.b_eq: list[float] = []
        self.g: list[dict[int, float]] = []
        self.h: list[float] = []
        for row, equality in reduced_rows:
            line, constant = self.line_of(row)
            if equality:  # line.x + constant = 0
                self.a_eq.append(line)
                self.b_eq.append(-constant)
            else:  # line.x + constant >= 0  ->  -line.x <= constant
                self.g.append({i: -c for i, c in line.items()})
                self.h.append(constant)
        for v in self.core:  # bounds as inequalities, so they can be found implicit too
            self.g.append({self.index[v]: -1.0})
            self.h.append(-audit.lo[v])
            if not math.isinf(audit.hi[v]):
                self.g.append({self.index[v]: 1.0})
                self.h.append(audit.hi[v])

    def line_of(self, row: dict[int, float] | dict[int, int]) -> tuple[dict[int, float], float]:
        """A linear form over the cells as one over x, and the constant the known cells add."""
        line: dict[int, float] = {}
        constant = 0.0
        for v, c in row.items():
            if v in self.index:
                line[self.index[v]] = line.get(self.index[v], 0.0) + c
            else:
                constant += c * self.lo[v]
        return line, constant


class StackedSystems:
    """Systems that share no cell side by side: x is their x's one after another."""

    def __init__(self, systems: list[GroupSystem]) -> None:
        self.columns = np.cumsum([0] + [s.size for s in systems])
        self.rows = np.cumsum([0] + [len(s.g) for s in systems])
        self.size = int(self.columns[-1])
        self.g = _sparse([{self.columns[k] + i: c for i, c in line.items()}
                          for k, s in enumerate(systems) for line in s.g], self.size)
        self.h = np.array([x for s in systems for x in s.h])
        self.equalities = sum(len(s.a_eq) for s in systems)
        self.a_eq = _sparse([{self.columns[k] + i: c for i, c in line.items()}
                             for k, s in enumerate(systems) for line in s.a_eq], self.size)
        self.b_eq = np.array([x for s in systems for x in s.b_eq])

    def maximise_slacks(self, undecided: list[int]) -> Any:
        """The linear programme: x and a slack s_j for each undecided inequality j,
        g_j x + s_j <= h_j (the others g x <= h), a_eq x = b_eq, 0 <= s <= 1; maximise sum(s)."""
        size, m = self.size, len(undecided)
        cost = np.concatenate([np.zeros(size), -np.ones(m)])
        slack = sparse.csr_array((np.ones(m), (np.array(undecided, dtype=int), np.arange(m))),
                                 shape=(len(self.h), m))
        return linprog(
            cost, A_ub=sparse.hstack([self.g, slack], format="csc"), b_ub=self.h,
            A_eq=sparse.hstack([self.a_eq, sparse.csr_array((self.equalities, m))],
                               format="csc") if self.equalities else None,
            b_eq=self.b_eq if self.equalities else None,
            bounds=[(None, None)] * size + [(0, 1)] * m, method="highs")


# ---------------------------------------------------------------------------------------------
# Relations of the monthly report (docs/suppression.md, "Monthly report")


def outcome_counts(a: Audit, rates: dict[str, Any], where: str) -> dict[str, int]:
    """Response / partial / non-response / remission / ITT rate dicts of one row."""
    resp_k, evaluable = a.rate(rates["response"], f"{where} response")
    part_k, e2 = a.rate(rates["partial_response"], f"{where} partial")
    non_k, e3 = a.rate(rates["non_response"], f"{where} non-response")
    rem_k, rem_n = a.rate(rates["remission"], f"{where} remission")
    itt_k, itt_n = a.rate(rates["itt_response"], f"{where} ITT")
    a.equal(evaluable, e2)
    a.equal(evaluable, e3)
    a.equal(resp_k, itt_k)
    a.total(evaluable, [resp_k, part_k, non_k])
    a.part(evaluable, rem_n, f"{where} baseline at or below remission cutoff")
    a.part(itt_n, evaluable, f"{where} no follow-up score")
    return {"evaluable": evaluable, "responders": resp_k, "partial": part_k, "non": non_k,
            "remitters": rem_k, "remission_n": rem_n, "itt": itt_n}


def audit_monthly(report: dict[str, Any]) -> Audit:
    a = Audit()
    inst = report["headline_instrument"]
    periods = {key: (p["start"], p["end"]) for key, p in report["periods"].items()}

    def name(period: str, what: str) -> str:
        start, end = periods[period]
        return f"{what} [{start}..{end}]"

    additive: list[tuple[str, str]] = []  # (what, unit) printed per period: rolling = parts

    def per(period: str, what: str, var: int) -> int:
        additive.append((what, ""))
        return a.same(name(period, what), var)

    # headline, per period
    for key, h in report["headline"].items():
        per(key, "courses", a.cell(h["courses_ended"], f"{key} courses ended"))
        per(key, "courses", a.cell(report["periods"][key]["courses"], f"{key} period courses"))
        counts = outcome_counts(a, h, f"{key} headline")
        for what, var in counts.items():
            per(key, f"{inst} {what} all", var)
        disc, courses = a.rate(h["dropout"], f"{key} dropout")
        per(key, "courses", courses)
        per(key, "discontinued all", disc)
        ae, infusions = a.rate(h["adverse_events"], f"{key} adverse events")
        per(key, "infusions", infusions)
        per(key, "infusions with an adverse event", ae)
    # activity (month, previous)
    for key, act in report["activity"].items():
        infusions = per(key, "infusions", a.cell(act["infusions"], f"{key} activity infusions"))
        aborted = per(key, "aborted", a.cell(act["aborted"], f"{key} activity aborted"))
        a.part(infusions, aborted, f"{key} infusions not aborted")
        per(key, "discontinued all", a.cell(act["courses_discontinued"], f"{key} discontinued"))
        for field in ("new_patients", "courses_started", "courses_completing", "cancelled"):
            a.cell(act[field], f"{key} activity {field}")
    # outcomes per protocol x instrument (month, rolling)
    for key, rows in report["outcomes"].items():
        by_instrument: dict[str, list[dict[str, int]]] = {}
        for row in rows:
            where = f"{key} {row['protocol_id']} {row['instrument']}"
            courses = per(key, f"courses {row['protocol_id']}",
                          a.cell(row["courses"], f"{where} ended"))
            evaluable = a.cell(row["evaluable"], f"{where} evaluable")
            not_evaluable = a.cell(row["not_evaluable"], f"{where} not evaluable")
            a.total(courses, [evaluable, not_evaluable])
            counts = outcome_counts(a, row, where)
            a.equal(evaluable, counts["evaluable"])
            counts["not_evaluable"] = not_evaluable
            counts["courses"] = courses
            for what, var in counts.items():
                if what != "courses":
                    per(key, f"{row['instrument']} {what} {row['protocol_id']}", var)
            by_instrument.setdefault(row["instrument"], []).append(counts)
        protocols = {row["protocol_id"] for row in rows}
        a.total(a.q(name(key, "courses")),
                [a.q(name(key, f"courses {p}")) for p in sorted(protocols)])
        for instrument, parts in by_instrument.items():
            for what in ("evaluable", "responders", "partial", "non", "remitters",
                         "remission_n", "itt", "not_evaluable"):
                a.total(a.q(name(key, f"{instrument} {what} all")), [c[what] for c in parts])
    # time to response (headline instrument)
    for key, rows in report["timing"].items():
        for row in rows:
            where = f"{key} timing {row['protocol_id']}"
            evaluable = per(key, f"{inst} evaluable {row['protocol_id']}",
                            a.cell(row["evaluable"], f"{where} evaluable"))
            classes = []
            for c in row["classes"]:
                var = per(key, f"timing {c['key']} {row['protocol_id']}",
                          a.cell(c["count"], f"{where} {c['key']}"))
                a.share(c["share"], var, f"{where} {c['key']} share")
                if c["share"] is not None:
                    a.part(evaluable, var, f"{where} not {c['key']}")
                classes.append(var)
            a.total(evaluable, classes)
    # attrition
    for key, rows in report["attrition"].items():
        for row in rows:
            p = row["protocol_id"]
            where = f"{key} attrition {p}"
            started = per(key, f"courses {p}", a.cell(row["started"], f"{where} started"))
            reached = []
            for c in row["reached"]:
                var = per(key, f"reached {c['infusion_number']} {p}",
                          a.cell(c["count"], f"{where} reached {c['infusion_number']}"))
                a.share(c["share"], var, f"{where} share {c['infusion_number']}")
                a.part(started, var, f"{where} not reaching {c['infusion_number']}")
                reached.append(var)
            if reached:
                a.equal(started, reached[0])
            for first, second in zip(reached, reached[1:], strict=False):
                a.part(first, second, f"{where} stopping")
            completed = per(key, f"completed {p}", a.cell(row["completed"], f"{where} completed"))
            disc = per(key, f"discontinued {p}", a.cell(row["discontinued"],
                                                         f"{where} discontinued"))
            a.total(started, [completed, disc])
            if row["planned"] and row["planned"] <= len(reached):
                a.equal(reached[row["planned"] - 1], completed)
            d_k, d_n = a.rate(row["dropout"], f"{where} dropout")
            a.equal(d_k, disc)
            a.equal(d_n, started)
        if rows:
            a.total(a.q(name(key, "discontinued all")),
                    [a.q(name(key, f"discontinued {r['protocol_id']}")) for r in rows])
    # safety
    for key, s in report["safety"].items():
        infusions = per(key, "infusions", a.cell(s["infusions"], f"{key} safety infusions"))
        item9 = s["item9"]
        scores = a.cell(item9["scores"], f"{key} item-9 scores")
        a.at_least([scores], [a.cell(item9["patients"], f"{key} item-9 patients")])
        per(key, "item-9 scores", scores)
        if s["empty"]:
            continue
        aborted, n = a.rate(s["aborted"], f"{key} aborted")
        a.equal(n, infusions)
        per(key, "aborted", aborted)
        bp = per(key, "bp recorded", a.cell(s["bp_recorded"], f"{key} BP recorded"))
        a.part(infusions, bp, f"{key} BP not recorded")
        high, bp_n = a.rate(s["high_bp"], f"{key} high BP")
        a.equal(bp, bp_n)
        per(key, "high bp", high)
        any_ae, n = a.rate(s["any_adverse_event"], f"{key} any adverse event")
        a.equal(n, infusions)
        per(key, "infusions with an adverse event", any_ae)
        types = []
        for e in s["events"]:
            t, n = a.rate(e["rate"], f"{key} {e['event_type']}")
            a.equal(n, infusions)
            a.at_least([any_ae], [t])
            per(key, f"event {e['event_type']}", t)
            types.append(t)
        if types:
            a.at_least(types, [any_ae])
    # completeness
    for key, rows in report["completeness"].items():
        for row in rows:
            where = f"{key} completeness {row['instrument']}"
            courses = per(key, "courses", a.cell(row["courses"], f"{where} courses"))
            reasons = [a.cell(c, f"{where} reason {i}") for i, c in enumerate(row["reasons"])]
            evaluable = per(key, f"{row['instrument']} evaluable all",
                            a.cell(row["evaluable"], f"{where} evaluable"))
            a.total(courses, [*reasons, evaluable])
            a.total(a.q(name(key, f"{row['instrument']} not_evaluable all")), reasons)
            # ITT = evaluable + no follow-up score
            a.total(a.q(name(key, f"{row['instrument']} itt all")), [evaluable, reasons[2]])
            for i, var in enumerate(reasons):
                per(key, f"{row['instrument']} reason {i}", var)
    # site / provider
    for key, blocks in report["breakdown"].items():
        for block in blocks:
            columns: dict[str, list[int]] = {c: [] for c in
                                             ("courses", "infusions", "disc", "resp", "eval")}
            for row in block["rows"]:
                where = f"{key} {block['unit']} {row['name']}"
                courses = a.cell(row["courses"], f"{where} courses")
                infusions = a.cell(row["infusions"], f"{where} infusions")
                disc, d_n = a.rate(row["dropout"], f"{where} dropout")
                resp, evaluable = a.rate(row["response"], f"{where} response")
                a.equal(courses, d_n)
                if row["total"]:
                    for what, var in (("courses", courses), ("infusions", infusions),
                                      ("discontinued all", disc),
                                      (f"{inst} responders all", resp),
                                      (f"{inst} evaluable all", evaluable)):
                        per(key, what, var)
                    totals = {"courses": courses, "infusions": infusions, "disc": disc,
                              "resp": resp, "eval": evaluable}
                else:
                    unit = f"{block['unit']} {row['name']}"
                    for what, var in (("courses", courses), ("infusions", infusions),
                                      ("disc", disc), ("resp", resp), ("eval", evaluable)):
                        columns[what].append(per(key, f"{what} {unit}", var))
            if block["rows"]:
                for what, parts in columns.items():
                    a.total(totals[what], parts)
    # control chart: months are the headline's months; 12 months add up to the rolling figures
    chart = report["control_chart"]
    month_vars = {}
    for point in chart["points"]:
        start = point["month"] + "-01"
        where = f"p-chart {point['month']}"
        k_var = a.cell(point["responders"], f"{where} responders")
        n_var = a.cell(point["evaluable"], f"{where} evaluable")
        a.part(n_var, k_var, f"{where} not responding")
        if point["proportion"] is not None and a.kind[k_var] != "known":
            a.direct.append(f"{where}: proportion printed beside a hidden count")
        if point["lower"] is not None and a.kind[n_var] != "known":
            a.direct.append(f"{where}: control limits reveal the hidden n")
        month_vars[point["month"]] = (k_var, n_var)
        for key, (p_start, _) in periods.items():
            if key != "rolling" and p_start == start:
                a.same(name(key, f"{inst} responders all"), k_var)
                a.same(name(key, f"{inst} evaluable all"), n_var)
    last_year = sorted(month_vars)[-12:]
    if len(last_year) == 12:
        a.total(a.q(name("rolling", f"{inst} responders all")),
                [month_vars[m][0] for m in last_year])
        a.total(a.q(name("rolling", f"{inst} evaluable all")),
                [month_vars[m][1] for m in last_year])
    total_n = a.cell(chart["courses"], "p-chart courses")
    a.total(total_n, [v[1] for v in month_vars.values()])
    if chart["centre"] is not None and a.kind[total_n] == "known":
        total_k = a.cell(round(chart["centre"] * a.lo[total_n]), "p-chart responders")
        a.total(total_k, [v[0] for v in month_vars.values()])
    # cumulative response curves: a drawn curve with its n gives every step's counts
    for curve in report["cumulative_response"]:
        if curve["withheld"]:
            assert curve["steps"] == [] and curve["courses"] is None
            continue
        n = a.cell(curve["courses"], f"curve {curve['protocol_id']} n")
        per("rolling", f"{inst} evaluable {curve['protocol_id']}", n)
        for problem in curve_leaks(curve):
            a.direct.append(problem)
    # severity bands
    severity = report["severity"]
    if severity and not severity["empty"]:
        courses = per("rolling", "PHQ-9 evaluable all", a.cell(severity["courses"], "bands n"))
        for column in ("baseline", "endpoint"):
            a.total(courses, [a.cell(b[column], f"band {b['label']} {column}")
                              for b in severity["bands"]])
    audit_case_mix(a, report["case_mix"], lambda what: name("rolling", what), inst)
    # latest load
    for f in report["latest_load"]["files"]:
        read = a.cell(f["rows_read"], f"{f['file']} read")
        a.total(read, [a.cell(f[c], f"{f['file']} {c}")
                       for c in ("added", "corrected", "unchanged", "duplicates", "rejected")])
    # a count of the 12 months = the month's + the previous month's + the other ten
    for quantity in list(a.quantities):
        match = re.fullmatch(r"(.*) \[(\S+)\.\.(\S+)\]", quantity)
        if not match or (match.group(2), match.group(3)) != periods["rolling"]:
            continue
        what = match.group(1)
        parts = [a.quantities[name(key, what)] for key in ("month", "previous")
                 if name(key, what) in a.quantities]
        if parts and not what.startswith("item-9"):
            a.total(a.quantities[quantity], [*parts, a.free(f"{what}: other months")])
    return a


def audit_case_mix(a: Audit, cm: dict[str, Any], rolling: Any, inst: str) -> None:
    """Case mix (docs/case-mix.md, rolling 12 months): the sites, and the providers, add up to
    the model's courses and responders; a unit's courses and responders contain its rolling
    site/provider-table figures (the rest: courses evaluable only on another instrument); the
    model's contain the clinic's. O = O/E x E, the interval gives O back from E, the adjusted
    rate gives the overall rate, and the expected counts add up to the responders: none of
    them may be printed beside a hidden count, nor an expected count of 1..10."""
    n = a.cell(cm["n"], "case-mix courses")
    a.part(n, a.q(rolling(f"{inst} evaluable all")), "case-mix courses on another instrument")
    model = cm["model"]
    if model is None:
        return
    a.equal(n, a.cell(model["n"], "case-mix model n"))
    responders = a.cell(model["responders"], "case-mix responders")
    a.part(n, responders, "case-mix non-responders")
    a.part(responders, a.q(rolling(f"{inst} responders all")),
           "case-mix responders on another instrument")
    totals_known = a.kind[n] == a.kind[responders] == "known"
    if model["overall_rate"] is not None and not totals_known:
        a.direct.append("case-mix overall rate printed beside a hidden count")
    for kind in ("site", "provider"):
        rows = cm[f"{kind}s"]
        observed, evaluable = [], []
        for r in rows:
            where = f"case-mix {kind} {r[kind]}"
            o, e = a.rate(r["raw_rate"], f"{where} raw response")
            a.equal(o, a.cell(r["observed"], f"{where} O"))
            a.equal(e, a.cell(r["evaluable"], f"{where} courses"))
            short = {"resp": o, "eval": e}
            for what, var in short.items():
                a.part(var, a.q(rolling(f"{what} {kind} {r[kind]}")),
                       f"{where} {what} on another instrument")
            observed.append(o)
            evaluable.append(e)
            printed = [key for key in ("oe", "oe_ci_low", "oe_ci_high", "adjusted_rate")
                       if r[key] is not None]
            expected = r["expected"]
            if isinstance(expected, float | int) and 1 <= expected <= K:
                a.direct.append(f"{where}: expected count {expected} printed")
            if (printed or isinstance(expected, float)) and not (
                    a.kind[o] == "known" and totals_known):
                a.direct.append(f"{where}: {printed or 'E'} printed beside a hidden count")
        a.total(n, evaluable)
        a.total(responders, observed)
        if rows and all(isinstance(r["expected"], float) for r in rows) and not totals_known:
            a.direct.append(f"case-mix: every {kind}'s E printed (they add up to the responders)")


def curve_leaks(curve: dict[str, Any]) -> list[str]:
    """Every (responses, censored) sequence consistent with a drawn Kaplan-Meier curve and its
    n; a step whose responses or censored courses can only be one value from 1 to 10 leaks."""
    n = curve["courses"]
    survival = [1.0] + [1 - s["cumulative_response"] for s in curve["steps"]]
    # states: courses at risk at step j -> possible (events, censored) at j
    at_risk = {n}
    options: list[dict[int, set[tuple[int, int]]]] = []
    for j in range(len(curve["steps"])):
        ratio = 1 - survival[j + 1] / survival[j] if survival[j] > 0 else 0.0
        step_options: dict[int, set[tuple[int, int]]] = {}
        nxt = set()
        last = j == len(curve["steps"]) - 1
        for r in at_risk:
            d = round(ratio * r)
            if abs(d - ratio * r) > 1e-6 or d > r:
                continue
            censored_range = [r - d] if last else range(0, r - d + 1)
            for c in censored_range:
                if d + c == 0:
                    continue  # a step is drawn only where something happened
                step_options.setdefault(r, set()).add((d, c))
                nxt.add(r - d - c)
        options.append(step_options)
        at_risk = nxt
    problems = []
    for j, step_options in enumerate(options):
        events = {d for pairs in step_options.values() for d, _ in pairs}
        censored = {c for pairs in step_options.values() for _, c in pairs}
        for what, values in (("responses", events), ("censored", censored)):
            if len(values) == 1 and 1 <= next(iter(values)) <= K:
                problems.append(f"curve {curve['protocol_id']} step {j + 1}: {what} "
                                f"= {next(iter(values))}")
    return problems


# ---------------------------------------------------------------------------------------------
# Relations of the evidence report (docs/suppression.md, "Evidence report")


def audit_evidence(report: dict[str, Any]) -> Audit:
    a = Audit()
    for s in report["protocols"]:
        p = s["protocol_id"]
        nip = a.cell(s["courses_not_in_progress"], f"{p} not in progress")
        a.cell(s["in_progress"], f"{p} in progress")
        if s["rates"]:
            counts = evidence_rates(a, s["rates"], f"{p} {s['instrument']}")
            a.part(nip, counts["itt"], f"{p} without a baseline")
            cm = s["case_mix"]
            share, evaluable = a.rate(cm["share_caseness"], f"{p} share at caseness")
            a.equal(evaluable, counts["evaluable"])
            below = a.part(evaluable, share, f"{p} below caseness")
            higher = None  # the severity bands' limits rise (PHQ-9: >= 15, then >= 20)
            for band in cm["severity"]:
                at, e_at = a.rate(band["share"], f"{p} share >= {band['limit']}")
                a.equal(e_at, evaluable)
                if higher is not None:
                    a.part(higher, at, f"{p} band below {band['limit']}")
                elif (cm["caseness"] or 0) <= band["limit"]:
                    a.part(share, at, f"{p} caseness to {band['limit']}")
                higher = at
            del below
            if not cm["restricted_withheld"]:
                case = evidence_rates(a, cm["restricted"], f"{p} caseness")
                a.equal(case["evaluable"], share)
                for what in ("evaluable", "responders", "non", "not_responding", "remitters",
                             "remission_n", "itt", "itt_remission", "itt_non", "itt_not"):
                    a.part(counts[what], case[what], f"{p} {what} below caseness")
        for o in s["other_instruments"]:
            oc = evidence_rates(a, o, f"{p} {o['instrument']}")
            a.part(nip, oc["itt"], f"{p} {o['instrument']} without a baseline")
        for f in s["families"]:
            # the clinic on the funnel: the same n and responders as the rate table; limits
            # only for a printed n; a position beside a withheld count must hold for every
            # count its marker allows (the limits say which counts are within)
            placements = [(f, counts if s["rates"] else None)]
            if f["case"] is not None:
                placements.append((f["case"], case))
            for placement, same in placements:
                n = a.cell(placement["n"], f"{p} {f['key']} funnel n")
                r = a.cell(placement["responders"], f"{p} {f['key']} funnel responders")
                if same is not None:
                    a.equal(n, same["evaluable"])
                    a.equal(r, same["responders"])
                if placement["limit95_low"] is not None:
                    assert isinstance(placement["n"], int) and placement["n"] > K
                if placement["position"] is not None and not isinstance(placement["responders"],
                                                                        int):
                    total = placement["n"]
                    allowed = range(1, K + 1) if placement["responders"] == SMALL else \
                        range(K + 1, total + 1)
                    low, high = placement["limit95_low"], placement["limit95_high"]
                    seen = {"below" if x / total < low else "above" if x / total > high
                            else "within" for x in allowed}
                    if seen != {placement["position"]}:
                        a.direct.append(f"{p} {f['key']}: position narrows a withheld count")
        for c in s["claims"]:
            where = f"{p} claim {c['key']}"
            if c.get("mix") is not None:
                mix_n = a.cell(c["mix_n"], f"{where} responders")
                parts = []
                for m in c["mix"]:
                    k, n = evidence_rate(a, m, f"{where} {m['label']}")
                    a.equal(n, mix_n)
                    parts.append(k)
                a.total(mix_n, parts)
            elif c["estimate"] is not None and c["key"] in ("better_3_4", "durability"):
                est = c["estimate"]
                a.cell(est.get("subjects"), f"{where} subjects")
            elif c["estimate"] is not None and c["key"] == "completion":
                k, n = evidence_rate(a, c["estimate"], where)
                a.equal(n, nip)
                completed = k
                within_k, within_n = evidence_rate(a, c["within_days"], f"{where} within days") \
                    if c.get("within_days") else (None, None)
                if within_k is not None:
                    a.equal(within_n, nip)
                    a.part(completed, within_k, f"{where} completed late")
            elif c["estimate"] is not None:
                evidence_rate(a, c["estimate"], where)
    return a


def evidence_rate(a: Audit, r: dict[str, Any], name: str) -> tuple[int, int]:
    """An evidence rate dict: a printed rate gives its k and n (Wilson interval and n);
    a withheld one shows "<11" or nothing."""
    if r["rate"] is not None:
        k = a.cell(int(r["numerator"]), f"{name} numerator")
        n = a.cell(int(r["denominator"]), f"{name} denominator")
    else:
        k = a.cell(r.get("numerator"), f"{name} numerator")
        n = a.cell(r.get("denominator"), f"{name} denominator")
    a.part(n, k, f"{name} complement")
    return k, n


def evidence_rates(a: Audit, rates: dict[str, Any], where: str) -> dict[str, int]:
    rows = {r["key"]: r for r in rates["rows"]}
    evaluable = a.cell(rates["evaluable"], f"{where} evaluable")
    itt = a.cell(rates["itt"], f"{where} itt")
    out = {"evaluable": evaluable, "itt": itt}
    for key, short in (("response", "responders"), ("remission", "remitters"),
                       ("non_response", "non"), ("not_response", "not_responding")):
        k, n = evidence_rate(a, rows[key]["evaluable"], f"{where} {key}")
        ik, itt_n = evidence_rate(a, rows[key]["itt"], f"{where} ITT {key}")
        out[short] = k
        if key == "remission":
            out["remission_n"] = n
            out["itt_remission"] = itt_n
            a.part(evaluable, n, f"{where} remission not evaluable")
            a.equal(k, ik)
            a.part(itt_n, n, f"{where} remission without endpoint")
        else:
            a.equal(n, evaluable)
            a.equal(itt_n, itt)
        if key == "non_response":
            out["itt_non"] = ik
        if key == "not_response":
            out["itt_not"] = ik
        if key == "response":
            a.equal(k, ik)
    gap = a.part(itt, evaluable, f"{where} without an endpoint")
    a.total(evaluable, [out["responders"], out["not_responding"]])
    a.part(out["not_responding"], out["non"], f"{where} partial responders")
    a.total(out["itt_non"], [out["non"], gap])
    a.total(out["itt_not"], [out["not_responding"], gap])
    return out


# ---------------------------------------------------------------------------------------------
# Fixtures


def write_suppress_config(tmp_path: Path) -> Path:
    path = tmp_path / "suppress.toml"
    path.write_text(SUPPRESS, encoding="utf-8")
    return path


def monthly_json(db: Path, month: str, config_path: Path) -> dict[str, Any]:
    """The report's JSON as written, without rendering a PDF (same function, same bytes)."""
    from pipeline.months import parse_month
    from pipeline.reports.files import context_json
    from pipeline.reports.monthly.context import build_context
    from pipeline.reports.monthly.write import read_monthly_results

    config = load_config(config_path)
    report_month = parse_month(month)
    context = build_context(read_monthly_results(db, report_month, config), report_month)
    return json.loads(context_json(context))


@pytest.fixture(scope="module")
def demo(demo_db: Path, suppress_config: Path,
         suppressed_reports: dict[str, list[Path]]) -> dict[str, Any]:
    """The 400-patient demo with suppression on: monthly PDF + JSON and evidence PDF + JSON."""
    db, config_path = demo_db, suppress_config
    pdf, js = suppressed_reports["monthly"]
    epdf, ejs = suppressed_reports["evidence"]
    return {"db": db, "config": config_path, "pdf": pdf,
            "json": json.loads(js.read_text(encoding="utf-8")),
            "text": pdftotext(pdf), "evidence": json.loads(ejs.read_text(encoding="utf-8")),
            "evidence_text": pdftotext(epdf)}


def pdftotext(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


# ---------------------------------------------------------------------------------------------
# Tests: the demo reports


def test_monthly_report_with_suppression_passes_the_audit(demo: dict[str, Any]) -> None:
    audit = audit_monthly(demo["json"])
    assert audit.leaks() == []
    # the audit is not vacuous: many cells are hidden, and many relations bind them
    printed = json.dumps(demo["json"])
    assert printed.count('"<11"') > 50 and printed.count('"*"') > 10
    assert len(audit.eqs) > 500


def test_pdf_prints_what_the_json_says(demo: dict[str, Any]) -> None:
    text, report = demo["text"], demo["json"]
    assert "<11" in text and "*" in text
    # withheld curves are named, and no n is drawn for them
    withheld = [c["protocol_id"] for c in report["cumulative_response"] if c["withheld"]]
    if withheld:
        assert "Curve withheld (small cells)" in " ".join(text.split())
    for protocol in withheld:
        assert f"{protocol} (n =" not in text
    # the headline row of the month prints exactly the JSON's cells
    h = report["headline"]["month"]
    line = next(li for li in text.splitlines() if li.strip().startswith("Courses ending"))
    assert str(h["courses_ended"]) in line.split()
    # no count from 1 to 10 in the site / provider tables of the PDF
    block = text[text.index("By site and by provider"):
                 text.index("Sites and providers adjusted for case mix")]
    for line in block.splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[0] not in ("Site", "Provider", "A"):
            for cell in cells[1:3]:
                assert not re.fullmatch(r"[1-9]|10", cell), line


def test_no_report_json_carries_a_raw_small_count(demo: dict[str, Any]) -> None:
    """Every count field of both JSON files is 0, more than 10, "<11" or "*"."""
    count_fields = {"numerator", "denominator", "courses", "courses_ended", "evaluable",
                    "not_evaluable", "count", "started", "completed", "discontinued",
                    "infusions", "bp_recorded", "scores", "patients", "responders",
                    "rows_read", "added", "corrected", "unchanged", "retired", "duplicates",
                    "rejected", "problems", "itt", "observed",
                    "in_progress", "courses_not_in_progress", "mix_n", "subjects", "finished",
                    "new_patients", "courses_started", "courses_completing", "cancelled",
                    "aborted", "baseline", "endpoint"}

    def walk(value: Any, key: str | None = None) -> list[tuple[str, Any]]:
        if isinstance(value, dict):
            return [x for k, v in value.items() for x in walk(v, k)]
        if isinstance(value, list):
            return [x for v in value for x in walk(v, key)]
        return [(key or "", value)]

    for report in (demo["json"], demo["evidence"]):
        for key, value in walk(report):
            if key in count_fields and isinstance(value, int) and not isinstance(value, bool):
                assert not 1 <= value <= K, (key, value)
        for _, value in walk(report.get("latest_load", {}).get("reasons", [])):
            assert not (isinstance(value, int) and 1 <= value <= K)


def test_evidence_report_passes_the_audit(demo: dict[str, Any]) -> None:
    audit = audit_evidence(demo["evidence"])
    assert audit.leaks() == []
    assert "<11" in demo["evidence_text"]


@pytest.fixture(scope="module")
def plain_report(demo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo's October 2026 monthly JSON with suppression off (text: each test reads its
    own copy)."""
    plain_config = tmp_path_factory.mktemp("plain") / "plain.toml"
    plain_config.write_text("[definitions]\nsuppress_small_cells = false\n", encoding="utf-8")
    return json.dumps(monthly_json(demo["db"], "2026-10", plain_config))


def test_the_auditor_finds_a_planted_leak(demo: dict[str, Any], plain_report: str) -> None:
    """Print the true value of every complementary "*" of the 12-month outcomes table: the
    "<11" cells they protected become derivable, and the auditor says so."""
    plain = json.loads(plain_report)
    report = json.loads(json.dumps(demo["json"]))
    planted = 0
    for row, true in zip(report["outcomes"]["rolling"], plain["outcomes"]["rolling"], strict=True):
        for field in ("response", "partial_response", "non_response", "remission",
                      "itt_response"):
            for part in ("numerator", "denominator"):
                if row[field][part] == STAR:
                    row[field][part] = true[field][part]
                    planted += 1
        for field in ("courses", "evaluable", "not_evaluable"):
            if row[field] == STAR:
                row[field] = true[field]
                planted += 1
    assert planted
    leaks = audit_monthly(report).leaks()
    assert any(leak.startswith("rolling ") for leak in leaks), leaks


def test_suppression_off_prints_every_count(plain_report: str) -> None:
    report = json.loads(plain_report)
    assert report.pop("suppression")["on"] is False
    text = json.dumps(report)
    assert '"<11"' not in text and '"*"' not in text
    assert all(not c["withheld"] for c in report["cumulative_response"])


def test_ledger_relations_hold_and_every_leak_is_closed(demo: dict[str, Any]) -> None:
    """The report's own bookkeeping: no figure registered twice with two values, no declared
    relation that is false on the data, no leak the solver gave up on."""
    from pipeline.months import parse_month
    from pipeline.reports.monthly.context import build_ledger_context
    from pipeline.reports.monthly.write import read_monthly_results

    config = load_config(demo["config"])
    month = parse_month("2026-10")
    _, ledger = build_ledger_context(read_monthly_results(demo["db"], month, config), month)
    assert ledger.conflicts == [] and ledger.violations == [] and ledger.unresolved == []


# ---------------------------------------------------------------------------------------------
# A hand-built export: one protocol with exactly 3 non-responders, totals printed


def hand_export(folder: Path) -> None:
    """Two protocols, PHQ-9 baseline 20 for every course; endpoints 8 (-60%: response),
    13 (-35%: partial) and 18 (-10%: non-response). Courses ending in September 2026:

    IND6 (6 infusions): 20 responders, 12 partial, 3 non-responders     -> 35 evaluable
    IND4 (4 infusions): 14 responders, 13 partial, 15 non-responders    -> 42 evaluable
    Clinic:             34 responders, 25 partial, 18 non-responders    -> 77 evaluable

    and, so that the 12 months differ from the month, courses ending in June 2026:
    IND6 30 / 15 / 15 and IND4 20 / 20 / 20. No remission (endpoints > 4), no dropout, no
    adverse event, one site and one provider.
    """
    write = _writer(folder)
    write("protocols.csv", """\
        protocol_id,name,planned_infusions,planned_days
        IND6,Six infusions,6,12
        IND4,Four infusions,4,8
        """)
    patients, sessions, scores = ["patient_id,site"], [
        "session_id,patient_id,protocol_id,started_at,status,site,provider"], [
        "patient_id,instrument,administered_at,total_score,timing"]
    number = 0
    for first, plan in ((date(2026, 9, 1), (("IND6", 6, ((20, 8), (12, 13), (3, 18))),
                                            ("IND4", 4, ((14, 8), (13, 13), (15, 18))))),
                        (date(2026, 6, 1), (("IND6", 6, ((30, 8), (15, 13), (15, 18))),
                                            ("IND4", 4, ((20, 8), (20, 13), (20, 18)))))):
        for protocol, infusions, groups in plan:
            for count, endpoint in groups:
                for _ in range(count):
                    number += 1
                    pid = f"H{number:03d}"
                    patients.append(f"{pid},North")
                    days = [first + timedelta(days=2 * i) for i in range(infusions)]
                    for i, day in enumerate(days):
                        sessions.append(f"{pid}-{i + 1},{pid},{protocol},{day}T09:00,completed,"
                                        "North,Dr A")
                    scores.append(f"{pid},PHQ-9,{first}T08:00,20,pre")
                    scores.append(f"{pid},PHQ-9,{days[-1] + timedelta(days=1)},{endpoint},"
                                  "followup")
    write("patients.csv", "\n".join(patients) + "\n")
    write("sessions.csv", "\n".join(sessions) + "\n")
    write("assessments.csv", "\n".join(scores) + "\n")


def _writer(folder: Path):  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, text: str) -> None:
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")

    return write


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from pipeline.reports.monthly.write import write_monthly_report

    base = tmp_path_factory.mktemp("hand")
    hand_export(base / "export")
    db = base / "clinic.duckdb"
    ingest(base / "export", db, load_config(), today=LOAD_DAY)
    config = load_config(write_suppress_config(base))
    pdf, js = write_monthly_report(db, "2026-09", base / "out", config)
    return {"json": json.loads(js.read_text(encoding="utf-8")), "text": pdftotext(pdf)}


def test_three_non_responders_print_as_small_and_their_complements_are_withheld(
        hand: dict[str, Any]) -> None:
    rows = {row["protocol_id"]: row for row in hand["json"]["outcomes"]["month"]}
    ind6, ind4 = rows["IND6"], rows["IND4"]
    # IND6: 3 non-responders -> "<11"; partial (12) is the smallest other cell of
    # 20 + 12 + 3 = 35 -> "*"; response 20/35 stays (35 - 20 = 15 is not small)
    assert ind6["non_response"]["numerator"] == SMALL
    assert ind6["partial_response"]["numerator"] == STAR
    assert (ind6["response"]["numerator"], ind6["response"]["denominator"]) == (20, 35)
    assert ind6["response"]["rate"] == pytest.approx(20 / 35)
    assert ind6["non_response"]["rate"] is None and ind6["partial_response"]["rate"] is None
    # The clinic's non-responders (18) are printed in the headline, so IND4's 15 would give
    # IND6's 3 away (18 - 15): IND4's non-responders are withheld, and with them (a lone
    # hidden cell in IND4's row) IND4's partial responders (13 < 14 responders).
    headline = hand["json"]["headline"]["month"]
    assert headline["non_response"]["numerator"] == 18
    assert headline["non_response"]["denominator"] == 77
    assert ind4["non_response"]["numerator"] == STAR
    assert ind4["partial_response"]["numerator"] == STAR
    assert (ind4["response"]["numerator"], ind4["response"]["denominator"]) == (14, 42)
    # the partial column: IND6 "*", IND4 "*", clinic 25 - two unknowns, each at least 11
    assert headline["partial_response"]["numerator"] == 25
    assert audit_monthly(hand["json"]).leaks() == []


def test_hand_built_pdf_prints_the_same_cells(hand: dict[str, Any]) -> None:
    text = hand["text"]
    month_table = text[text.index("Courses ending in September 2026"):
                       text.index("Courses ending in the 12 months")]
    lines = month_table.splitlines()
    at = {li.split()[0]: i for i, li in enumerate(lines) if li.split()[:1] in (["IND6"], ["IND4"])}
    ind6 = lines[at["IND6"]].split()
    # Protocol, Instrument, Ended, Evaluable, Response k/n, Partial k/n, Non-response k/n ...
    assert ind6[:7] == ["IND6", "PHQ-9", "35", "35", "20/35", "*/35", "<11/35"]
    ind4 = lines[at["IND4"]].split()
    assert ind4[:7] == ["IND4", "PHQ-9", "42", "42", "14/42", "*/42", "*/42"]
    assert "57.1%" in lines[at["IND6"] + 1]  # 20/35


# ---------------------------------------------------------------------------------------------
# Property-style: the demo at several seeds and sizes


@pytest.mark.slow
@pytest.mark.parametrize(("patients", "seed"), [(60, 1), (120, 2), (200, 3), (90, 11)])
def test_demo_reports_pass_the_audit(tmp_path: Path, patients: int, seed: int) -> None:
    from pipeline.reports.evidence.write import evidence_context

    db, config_path = audited_demo(tmp_path, patients, seed)
    report = monthly_json(db, "2026-10", config_path)
    assert audit_monthly(report).leaks() == []
    evidence = json_ready(evidence_context(db, date(2026, 10, 31), load_config(config_path)))
    assert audit_evidence(evidence).leaks() == []


# ---------------------------------------------------------------------------------------------
# Every month, not one: the demo at several sizes and seeds, each month of its data audited


def audited_demo(folder: Path, patients: int, seed: int) -> tuple[Path, Path]:
    """The demo export (clinic activity to 2026-10-31) loaded, and the suppression config."""
    write_demo(folder / "export", patients=patients, seed=seed, end=date(2026, 10, 31))
    db = folder / "clinic.duckdb"
    ingest(folder / "export", db, load_config(), today=LOAD_DAY)
    return db, write_suppress_config(folder)


def data_months(db: Path) -> list[str]:
    """Every month from the first infusion of the data to October 2026."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        first = con.sql("SELECT min(started_at) FROM sessions").fetchall()[0][0]
    finally:
        con.close()
    year, month, months = first.year, first.month, []
    while (year, month) <= (2026, 10):
        months.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def month_leaks(db: Path, config: Path, months: list[str],
                report: Callable[[Path, str, Path], dict[str, Any]] = monthly_json
                ) -> dict[str, list[str]]:
    leaks = {month: audit_monthly(report(db, month, config)).leaks() for month in months}
    return {month: found for month, found in leaks.items() if found}


class AuditedDemos:
    """The audited demos built so far in this module, by (patients, seed), and the monthly
    JSON read from them, by month: several tests audit the same demo and month (the
    databases are only read; each test gets its own copy of a report)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.built: dict[tuple[int, int], tuple[Path, Path]] = {}
        self.reports: dict[tuple[Path, str, Path], str] = {}

    def demo(self, patients: int, seed: int) -> tuple[Path, Path]:
        if (patients, seed) not in self.built:
            folder = self.factory.mktemp(f"audited-{patients}-{seed}")
            self.built[patients, seed] = audited_demo(folder, patients, seed)
        return self.built[patients, seed]

    def monthly(self, db: Path, month: str, config: Path) -> dict[str, Any]:
        if (db, month, config) not in self.reports:
            self.reports[db, month, config] = json.dumps(monthly_json(db, month, config))
        return json.loads(self.reports[db, month, config])


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> AuditedDemos:
    return AuditedDemos(tmp_path_factory)


@pytest.mark.parametrize(("patients", "seed", "month"), [(300, 3, "2025-08"), (150, 21, "2026-10")])
def test_months_where_the_auditor_found_leaks_pass_it(demos: AuditedDemos, patients: int,
                                                       seed: int, month: str) -> None:
    """300 patients seed 3, August 2025: a "no follow-up score" count of 1 was ITT n minus
    remission n; 150 patients seed 21, October 2026: the clinic's PHQ-9 "no baseline" was 1
    (the protocols' reasons add up to the clinic's, the 12 months less each month too)."""
    db, config = demos.demo(patients, seed)
    assert month_leaks(db, config, [month], demos.monthly) == {}


def test_every_month_of_a_small_demo_passes_the_audit(tmp_path: Path) -> None:
    db, config = audited_demo(tmp_path, 80, 9)
    months = data_months(db)
    assert len(months) >= 15  # the demo's whole history, early sparse months included
    assert month_leaks(db, config, months) == {}


@pytest.mark.slow
@pytest.mark.parametrize(("patients", "seed"), [(150, 21), (300, 3)])
def test_every_month_of_the_demo_passes_the_audit(demos: AuditedDemos, patients: int,
                                                   seed: int) -> None:
    db, config = demos.demo(patients, seed)
    assert month_leaks(db, config, data_months(db), demos.monthly) == {}


@pytest.mark.slow
def test_a_large_demo_month_passes_the_audit(tmp_path: Path) -> None:
    """2,000 patients seed 5, July 2025: the auditor found 11 derivable counts there."""
    db, config = audited_demo(tmp_path, 2000, 5)
    assert month_leaks(db, config, ["2025-07"]) == {}
