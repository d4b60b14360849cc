"""Contacts search latency over 5,000 entries (units, duty rooms and people).

    python bench/contacts.py [--entries 5000] [--json]

Seeds a temporary SQLite database, then times searches by pinyin initials, full
pinyin, Chinese name and phone fragment through ``Directory.search_contacts`` (the
code behind /api/contacts). As a baseline measured in the same run on the same
engine, it also times a trivial ``SELECT 1`` round trip, and reports the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUERIES = ["ftq", "futian", "园岭", "ylj", "138001", "王", "zhb", "街道值班"]


async def run(entries: int, rounds: int) -> dict[str, object]:
    from sqlalchemy import text

    from dutycall import db
    from dutycall.directory import security
    from dutycall.directory.bootstrap import ensure_first_admin
    from dutycall.directory.demo import GIVEN, STREETS, SURNAMES
    from dutycall.directory.models import Account, DutyRoom, Role, Unit, UnitKind
    from dutycall.directory.service import Directory, pinyin_key

    folder = tempfile.mkdtemp(prefix="dutycall-contacts-")
    url = f"sqlite:///{folder}/contacts.sqlite3"
    await db.upgrade(url)
    engine = db.make_engine(url)
    sessionmaker = db.make_sessionmaker(engine)
    await ensure_first_admin(sessionmaker, "admin", "bench-password")
    rng = random.Random(5)
    password_hash = security.hash_password("x" * 12)
    async with sessionmaker() as session:
        root = (await session.execute(text("select id, path from units"))).first()
        per_kind = entries // 3
        units = []
        for i in range(per_kind):
            name = f"{STREETS[i % len(STREETS)]}{i}街道"
            unit = Unit(code=f"U{i}", name=name, kind=UnitKind.street, parent_id=root.id, path=f"{root.path}x{i}/",
                        name_pinyin=pinyin_key(name))
            units.append(unit)
        session.add_all(units)
        await session.flush()
        session.add_all(DutyRoom(unit_id=u.id, name=f"{u.name}值班室", phone=f"0755-{rng.randint(10**7, 10**8 - 1)}",
                                 name_pinyin=pinyin_key(f"{u.name}值班室")) for u in units)
        people = []
        for i in range(entries - 2 * per_kind):
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
            people.append(Account(username=f"user{i}", display_name=name, role=Role.viewer, unit_id=root.id,
                                  phone=f"138{rng.randint(10**7, 10**8 - 1)}", password_hash=password_hash,
                                  name_pinyin=pinyin_key(name)))
        session.add_all(people)
        await session.commit()

    directory = Directory(sessionmaker)
    _, admin = await directory.sign_in("admin", "bench-password")
    timings: dict[str, list[float]] = {q: [] for q in QUERIES}
    baseline: list[float] = []
    for _ in range(rounds):
        for q in QUERIES:
            t0 = time.perf_counter()
            await directory.search_contacts(admin, q)
            timings[q].append((time.perf_counter() - t0) * 1000)
        async with sessionmaker() as session:
            t0 = time.perf_counter()
            await session.execute(text("select 1"))
            baseline.append((time.perf_counter() - t0) * 1000)
    await engine.dispose()
    all_ms = [v for values in timings.values() for v in values]
    base = statistics.median(baseline)
    return {
        "entries": entries,
        "p50_ms": round(statistics.median(all_ms), 2),
        "p95_ms": round(sorted(all_ms)[int(len(all_ms) * 0.95) - 1], 2),
        "max_ms": round(max(all_ms), 2),
        "per_query_p50_ms": {q: round(statistics.median(v), 2) for q, v in timings.items()},
        "baseline_select1_ms": round(base, 3),
        "ratio_p50_to_baseline": round(statistics.median(all_ms) / base, 1) if base else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.entries, args.rounds))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"contacts search over {result['entries']} entries")
    for key in ("p50_ms", "p95_ms", "max_ms", "baseline_select1_ms", "ratio_p50_to_baseline"):
        print(f"  {key:24}{result[key]}")
    for q, ms in result["per_query_p50_ms"].items():  # type: ignore[union-attr]
        print(f"  q={q:20}{ms} ms")


if __name__ == "__main__":
    main()
