"""Synthetic retail data of any size, deterministic by seed, in the example's schema.

Writes ``data/sql/{customer,item,orders}.csv``, ``data/nosql/{customer,item,orders}.json``
and the example spec beside them, so ``dataferry run -c OUT/dataferry.yaml`` loads them.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["GenerateCounts", "generate"]

FIRST = [
    "José",
    "María",
    "Juan",
    "Guadalupe",
    "Francisco",
    "Ana",
    "Luis",
    "Sofía",
    "Carlos",
    "Valeria",
    "Jorge",
    "Fernanda",
    "Miguel",
    "Ximena",
    "Alejandro",
    "Regina",
    "Ricardo",
    "Camila",
    "Fernando",
    "Daniela",
    "Eduardo",
    "Mariana",
    "Roberto",
    "Andrea",
    "Javier",
    "Paola",
    "Arturo",
    "Renata",
    "Raúl",
    "Lucía",
    "Sergio",
    "Itzel",
    "Héctor",
    "Citlali",
    "Manuel",
    "Yolanda",
    "Rafael",
    "Gabriela",
    "Óscar",
    "Natalia",
    "Andrés",
    "Verónica",
    "Emiliano",
    "Beatriz",
    "Santiago",
    "Rocío",
    "Diego",
    "Leticia",
    "Tomás",
    "Julieta",
]
LAST = [
    "García",
    "Hernández",
    "López",
    "Martínez",
    "González",
    "Pérez",
    "Rodríguez",
    "Sánchez",
    "Ramírez",
    "Cruz",
    "Flores",
    "Gómez",
    "Morales",
    "Vázquez",
    "Reyes",
    "Jiménez",
    "Torres",
    "Díaz",
    "Gutiérrez",
    "Ruiz",
    "Mendoza",
    "Aguilar",
    "Ortiz",
    "Moreno",
    "Castillo",
    "Romero",
    "Álvarez",
    "Méndez",
    "Chávez",
    "Rivera",
    "Juárez",
    "Ramos",
    "Domínguez",
    "Herrera",
    "Medina",
    "Castro",
    "Vargas",
    "Guzmán",
    "Velázquez",
    "Muñoz",
    "Rojas",
    "Contreras",
    "Salazar",
    "Luna",
    "Ortega",
    "Cortés",
    "Guerrero",
    "Santiago",
    "Estrada",
    "Bautista",
]
STREETS = (
    "Av. Insurgentes Sur",
    "Calle Madero",
    "Av. Reforma",
    "Calle Hidalgo",
    "Av. Juárez",
    "Calle Morelos",
    "Av. Revolución",
    "Calle 5 de Mayo",
    "Av. Universidad",
    "Calle Zaragoza",
)
PLACES = (
    ("Col. Del Valle", "Ciudad de México", "DF", "55"),
    ("Col. Roma Norte", "Ciudad de México", "DF", "55"),
    ("Col. Centro", "Monterrey", "NL", "81"),
    ("Col. Americana", "Guadalajara", "JC", "33"),
    ("Col. Centro", "Puebla", "PL", "222"),
    ("Col. Juriquilla", "Querétaro", "QT", "442"),
    ("Col. García Ginerés", "Mérida", "YN", "999"),
    ("Col. Zona Río", "Tijuana", "BC", "664"),
)
PRODUCTS = (
    ("Café de Chiapas 500 g", 189_00, "abarrotes"),
    ("Agua Bonafont 1 L", 14_50, "bebidas"),
    ("Refresco de cola 600 ml", 18_00, "bebidas"),
    ("Tortillas de maíz 1 kg", 24_90, "abarrotes"),
    ("Frijol negro 900 g", 38_75, "abarrotes"),
    ("Chocolate de mesa", 62_40, "abarrotes"),
    ("Memoria USB 64 GB", 219_99, "electrónica"),
    ("Mouse inalámbrico", 349_00, "electrónica"),
    ("Monitor 24 pulgadas", 2899_00, "electrónica"),
    ("Audífonos Bluetooth", 599_50, "electrónica"),
    ("Libreta profesional", 45_00, "papelería"),
    ("Bolígrafo azul, paquete de 10", 52_30, "papelería"),
)
VARIANTS = ("", " (paquete de 2)", " (caja de 6)", " edición especial", " reacondicionado")
COMMENTS = (
    "",
    "",
    "",
    "Entregar por la tarde",
    'Cliente pidió "sin bolsa"',
    "Pago con tarjeta, sin factura",
    "Regalo; envolver",
    "Dejar con el portero, por favor",
)
_CONSONANTS = "BCDFGHJKLMNPQRSTVWXYZ"
_ALNUM = "0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ"
_SCRAMBLE = 7919  # prime, so coprime with len(FIRST) * len(LAST) ** 2
_EXACT = "\u0000exact\u0000"  # stands in for a number whose JSON text is written verbatim


@dataclass(frozen=True)
class GenerateCounts:
    customers: int = 30
    items: int = 24
    orders: int = 40
    # purchase records in data/nosql/orders.json (DynamoDB); None: as many as orders
    nosql_orders: int | None = None


def _fold(s: str) -> str:
    table = str.maketrans("ÁÉÍÓÚÜÑáéíóúüñ", "AEIOUUNaeiouun")
    return s.translate(table).upper()


def _first_vowel(s: str) -> str:
    return next((c for c in _fold(s)[1:] if c in "AEIOU"), "X")


def _person(i: int, rnd: random.Random) -> dict[str, str]:
    nf, nl = len(FIRST), len(LAST)
    capacity = nf * nl * nl
    # A multiplier coprime with the capacity walks every name once, in a mixed-up order;
    # past the capacity a numeral keeps (first_name, last_name) unique (the DynamoDB key).
    j = (i % capacity) * _SCRAMBLE % capacity
    first = FIRST[j % nf]
    paternal, maternal = LAST[(j // nf) % nl], LAST[j // (nf * nl)]
    generation = i // capacity
    last = f"{paternal} {maternal}" + (f" {generation + 1}" if generation else "")
    born = dt.date(1950, 1, 1) + dt.timedelta(days=rnd.randrange(0, 55 * 365))
    sex = "HM"[(j % nf) % 2]  # FIRST alternates male and female names
    place = PLACES[rnd.randrange(len(PLACES))]
    stem = _fold(paternal)[0] + _first_vowel(paternal) + _fold(maternal)[0] + _fold(first)[0]
    ymd = born.strftime("%y%m%d")
    curp = (
        stem
        + ymd
        + sex
        + place[2]
        + "".join(rnd.choice(_CONSONANTS) for _ in range(3))
        + rnd.choice(_ALNUM)
        + str(rnd.randrange(10))
    )
    rfc = stem + ymd + "".join(rnd.choice(_ALNUM) for _ in range(3))
    area = place[3]
    phone = area + "".join(str(rnd.randrange(10)) for _ in range(10 - len(area)))
    address = (
        f"{rnd.choice(STREETS)} {rnd.randrange(1, 3000)}, {place[0]}, {place[1]}, "
        f"C.P. {rnd.randrange(1000, 99999):05d}"
    )
    return {
        "first_name": first,
        "last_name": last,
        "phone_number": phone,
        "curp": curp,
        "rfc": rfc,
        "address": address,
        "city": place[1],
    }


def _item(i: int) -> tuple[str, int, str]:
    name, cents, category = PRODUCTS[i % len(PRODUCTS)]
    variant_i = i // len(PRODUCTS)
    variant = VARIANTS[variant_i % len(VARIANTS)]
    edition = variant_i // len(VARIANTS)
    title = name + variant + (f" #{edition + 1}" if edition else "")
    factor = (1, 2, 6, 1.25, 0.8)[variant_i % len(VARIANTS)]
    return title, round(cents * factor) + edition * 100, category


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _write_json_array(path: Path, records: Iterator[dict[str, object]]) -> None:
    """A JSON array, one record a line; a ``price`` is written as exact text (189.00)."""
    marker = json.dumps(_EXACT)
    with path.open("w", encoding="utf-8") as f:
        f.write("[")
        for n, rec in enumerate(records):
            f.write(",\n  " if n else "\n  ")
            price = rec.get("price")
            text = json.dumps({**rec, "price": _EXACT} if price else rec, ensure_ascii=False)
            f.write(text.replace(marker, str(price)) if price else text)
        f.write("\n]\n")


def generate(out: Path, counts: GenerateCounts = GenerateCounts(), seed: int = 7) -> list[Path]:
    """Write the retail files for ``counts`` rows under ``out``; return the paths written."""
    sql, nosql = out / "data" / "sql", out / "data" / "nosql"
    sql.mkdir(parents=True, exist_ok=True)
    nosql.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    people = [_person(i, rnd) for i in range(counts.customers)]
    items = [_item(i) for i in range(counts.items)]
    written = [sql / "customer.csv", sql / "item.csv", sql / "orders.csv"]

    with written[0].open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["customer_id", "first_name", "last_name", "phone_number", "curp", "rfc", "address"]
        )
        for i, p in enumerate(people, start=1):
            w.writerow(
                [
                    i,
                    p["first_name"],
                    p["last_name"],
                    p["phone_number"],
                    p["curp"],
                    p["rfc"],
                    p["address"],
                ]
            )
    with written[1].open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["item_id", "name", "price"])
        for i, (title, cents, _) in enumerate(items, start=1):
            w.writerow([i, title, _money(cents)])
    start = dt.date(2021, 1, 1).toordinal()
    with written[2].open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["order_id", "customer_id", "item_id", "order_date", "price", "comments"])
        for i in range(1, counts.orders + 1):
            item_id = rnd.randrange(counts.items) + 1 if counts.items else 0
            w.writerow(
                [
                    i,
                    rnd.randrange(counts.customers) + 1 if counts.customers else 0,
                    item_id,
                    dt.date.fromordinal(start + rnd.randrange(5 * 365)).isoformat(),
                    _money(items[item_id - 1][1]) if counts.items else "0.00",
                    rnd.choice(COMMENTS),
                ]
            )

    written += [nosql / "customer.json", nosql / "item.json", nosql / "orders.json"]
    _write_json_array(
        written[3],
        (
            {
                "first_name": p["first_name"],
                "last_name": p["last_name"],
                "email": f"{_fold(p['first_name']).lower()}.{i}@example.com.mx",
                "city": p["city"],
            }
            for i, p in enumerate(people, start=1)
        ),
    )
    _write_json_array(
        written[4],
        (
            {"title": title, "price": _money(cents), "category": category}
            for title, cents, category in items
        ),
    )

    def bought() -> Iterator[dict[str, object]]:
        # (item, customer) is the table key: walk distinct pairs so no record overwrites another.
        n_items, n_people = counts.items, counts.customers
        wanted = counts.orders if counts.nosql_orders is None else counts.nosql_orders
        for i in range(min(wanted, n_items * n_people)):
            title, cents, _ = items[i % n_items]
            person = people[i // n_items]
            quantity = rnd.randrange(1, 5)
            yield {
                "item": title,
                "customer": f"{person['first_name']} {person['last_name']}",
                "price": _money(cents),
                "quantity": quantity,
            }

    _write_json_array(written[5], bought())
    # The spec and its model SQL files, as the package ships them.
    template = resources.files("dataferry.templates").joinpath("retail")
    (out / "models").mkdir(exist_ok=True)
    models = sorted(
        f.name for f in template.joinpath("models").iterdir() if f.name.endswith(".sql")
    )
    for name in ["dataferry.yaml", *(f"models/{m}" for m in models)]:
        text = template.joinpath(name).read_text("utf-8")
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written
