"""Extract the response shapes of the Stripe objects the sandbox serves from Stripe's
official TypeScript definitions (npm package `stripe`) into stripe_types.json.

The tests read only the JSON, so they run offline; this script is for a developer with
npm who wants to refresh it (new API version, or more object types):

    .venv/bin/python tests/sandbox/data/extract_stripe_types.py            # npm pack stripe@23.1.0
    .venv/bin/python tests/sandbox/data/extract_stripe_types.py --version 23.2.0
    .venv/bin/python tests/sandbox/data/extract_stripe_types.py --package /path/to/package

Pick the npm version whose `esm/apiVersion.d.ts` `ApiVersion` is the one stripe-python
pins (stripe-python 16.1.0: `2026-10-28.endive`, which is stripe@23.1.0); the script
records both in the JSON and warns when they differ from `--expect-api-version`.

What it writes, per type (top-level objects such as `Invoice` and the nested ones they
use, such as `Invoice.AutomaticTax`): each property with
  optional  -- declared `name?:` (the field may be absent: includable fields such as
               `invoice.payments`, fields only some objects have);
  nullable  -- `null` is one of the union members;
  type      -- the type without `null`, in a small TypeScript-like notation:
               `string`, `number`, `boolean`, `decimal` (a decimal string), `'literal'`,
               `Array<T>`, `ApiList<T>` (a `list` object), `ApiSearchResult<T>`,
               `Map<T>` (an object with arbitrary keys: metadata, currency maps),
               `void` (never present), a type name, and unions `A | B`.
Enumerations that Stripe leaves open (`| OtherString`) become `string`. A type name that
is not in `types` (an object the sandbox does not serve, e.g. `Account`) is listed in
`external`: a response may only hold its id (the string member of the union).
`events` maps each event type to the type of its `data.object`.

The parser handles the regular shape of the generated .d.ts files (one member per line,
inline `{ [key: string]: T }` maps), not TypeScript in general.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_VERSION = "23.1.0"
EXPECT_API_VERSION = "2026-10-28.endive"
OUT = Path(__file__).with_name("stripe_types.json")

# Output name -> (file under esm/, interface name in that file).
ROOTS: dict[str, tuple[str, str]] = {
    "Customer": ("resources/Customers.d.ts", "Customer"),
    "DeletedCustomer": ("resources/Customers.d.ts", "DeletedCustomer"),
    "Product": ("resources/Products.d.ts", "Product"),
    "DeletedProduct": ("resources/Products.d.ts", "DeletedProduct"),
    "Price": ("resources/Prices.d.ts", "Price"),
    "DeletedPrice": ("resources/Prices.d.ts", "DeletedPrice"),
    "Coupon": ("resources/Coupons.d.ts", "Coupon"),
    "DeletedCoupon": ("resources/Coupons.d.ts", "DeletedCoupon"),
    "Discount": ("resources/Discounts.d.ts", "Discount"),
    "DeletedDiscount": ("resources/Discounts.d.ts", "DeletedDiscount"),
    "InvoiceItem": ("resources/InvoiceItems.d.ts", "InvoiceItem"),
    "DeletedInvoiceItem": ("resources/InvoiceItems.d.ts", "DeletedInvoiceItem"),
    "InvoiceLineItem": ("resources/InvoiceLineItems.d.ts", "InvoiceLineItem"),
    "Invoice": ("resources/Invoices.d.ts", "Invoice"),
    "DeletedInvoice": ("resources/Invoices.d.ts", "DeletedInvoice"),
    "InvoicePayment": ("resources/InvoicePayments.d.ts", "InvoicePayment"),
    "PaymentIntent": ("resources/PaymentIntents.d.ts", "PaymentIntent"),
    "Charge": ("resources/Charges.d.ts", "Charge"),
    "Refund": ("resources/Refunds.d.ts", "Refund"),
    "Dispute": ("resources/Disputes.d.ts", "Dispute"),
    "CreditNote": ("resources/CreditNotes.d.ts", "CreditNote"),
    "CreditNoteLineItem": ("resources/CreditNoteLineItems.d.ts", "CreditNoteLineItem"),
    "CustomerBalanceTransaction": (
        "resources/CustomerBalanceTransactions.d.ts",
        "CustomerBalanceTransaction",
    ),
    "TaxRate": ("resources/TaxRates.d.ts", "TaxRate"),
    "WebhookEndpoint": ("resources/WebhookEndpoints.d.ts", "WebhookEndpoint"),
    "DeletedWebhookEndpoint": ("resources/WebhookEndpoints.d.ts", "DeletedWebhookEndpoint"),
    "Event": ("resources/Events.d.ts", "EventBase"),
    "Address": ("shared.d.ts", "Address"),
}
# Names with a fixed meaning in the notation (the generic lists are handled as such).
BUILTIN = {
    "string": "string",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
    "void": "void",
    "any": "any",
    "unknown": "any",
    "true": "true",
    "false": "false",
    "OtherString": "string",
    "Decimal": "decimal",
    "Metadata": "Map<string>",
}
MAX_LITERALS = 20  # longer enumerations are written as `string` (event types: `events`)
GENERIC = {"Array", "ApiList", "ApiSearchResult", "Partial"}

# -- the .d.ts reader ---------------------------------------------------------------


@dataclass
class Member:
    name: str
    optional: bool
    type_text: str


@dataclass
class Decl:
    kind: str  # "interface" | "alias"
    file: str
    path: tuple[str, ...]  # namespace path inside the file, ending with the name
    members: list[Member] = field(default_factory=list)
    extends: list[str] = field(default_factory=list)
    alias: str = ""


@dataclass
class FileInfo:
    decls: dict[tuple[str, ...], Decl] = field(default_factory=dict)
    namespaces: set[tuple[str, ...]] = field(default_factory=set)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (file, name)


_IMPORT = re.compile(r"^import (?:\{(.*)\}|\* as (\w+)) from '(.*)';$")
_NAMESPACE = re.compile(r"^(?:export )?(?:declare )?namespace (\w+) \{$")
_INTERFACE = re.compile(r"^(?:export )?interface (\w+)(?:<[^>]*>)?(?: extends (.+?))? \{(\})?$")
_SKIP_BLOCK = re.compile(r"^(?:export )?(?:declare )?(?:abstract )?class .*\{$")
_ALIAS = re.compile(r"^(?:export )?(?:declare )?type (\w+)(?:<[^>]*>)? = (.*)$")
_MEMBER = re.compile(r"^(\w+|'[^']+')(\?)?: (.*)$")


def _strip_comments(text: str) -> list[str]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("//")]


def _balance(text: str) -> int:
    return text.count("{") - text.count("}") + text.count("<") - text.count(">")


def read_file(root: Path, rel: str) -> FileInfo:
    info = FileInfo()
    lines = _strip_comments((root / rel).read_text())
    stack: list[tuple[str, str]] = []  # (kind, name); kind: ns | iface | skip
    current: Decl | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if stack and stack[-1][0] == "skip":
            depth = 1
            i -= 1
            while depth and i < len(lines):
                depth += lines[i].count("{") - lines[i].count("}")
                i += 1
            stack.pop()
            continue
        names = tuple(n for k, n in stack if k == "ns")
        if m := _IMPORT.match(line):
            target = str((Path(rel).parent / m.group(3)).as_posix()).replace(".js", ".d.ts")
            for part in (m.group(1) or m.group(2)).split(","):
                bits = part.split(" as ")
                info.imports[bits[-1].strip()] = (_norm(target), bits[0].strip())
            continue
        if stack and stack[-1][0] == "iface":
            assert current is not None
            if line.startswith("}"):
                stack.pop()
                current = None
                continue
            text = line
            while (_balance(text) > 0 or not text.endswith(";")) and i < len(lines):
                text += " " + lines[i]
                i += 1
            if m := _MEMBER.match(text):
                current.members.append(
                    Member(m.group(1).strip("'"), bool(m.group(2)), m.group(3)[:-1])
                )
            continue
        if m := _NAMESPACE.match(line):
            stack.append(("ns", m.group(1)))
            info.namespaces.add((*names, m.group(1)))
            continue
        if m := _INTERFACE.match(line):
            path = (*names, m.group(1))
            extends = [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]
            current = Decl("interface", rel, path, extends=extends)
            info.decls[path] = current
            if not m.group(3):
                stack.append(("iface", m.group(1)))
            continue
        if m := _ALIAS.match(line):
            text = m.group(2)
            while (_balance(text) > 0 or not text.endswith(";")) and i < len(lines):
                text += " " + lines[i]
                i += 1
            info.decls[(*names, m.group(1))] = Decl(
                "alias", rel, (*names, m.group(1)), alias=text[:-1]
            )
            continue
        if _SKIP_BLOCK.match(line):
            stack.append(("skip", ""))
            continue
        if line.startswith("}"):
            if stack:
                stack.pop()
            continue
    return info


def _norm(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


# -- type expressions ---------------------------------------------------------------

_TOKEN = re.compile(r"\s*('(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*|\d+|\[\]|.)")


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text) if t.strip()]


class TypeParser:
    """Recursive descent over a TS type: unions, generics, `{[key: string]: T}`, `T[]`."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self) -> str:
        return self.toks[self.pos] if self.pos < len(self.toks) else ""

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if expected is not None and tok != expected:
            raise ValueError(f"expected {expected!r} at {tok!r} in {' '.join(self.toks)}")
        self.pos += 1
        return tok

    def union(self) -> list[Any]:
        if self.peek() == "|":
            self.take()
        members = [self.primary()]
        while self.peek() == "|":
            self.take()
            members.append(self.primary())
        return members

    def primary(self) -> Any:
        tok = self.take()
        if tok == "(":
            inner = self.union()
            self.take(")")
            node: Any = ("union", inner)
        elif tok == "{":
            self.take("[")
            self.take()  # key name
            self.take(":")
            self.take()  # key type
            self.take("]")
            self.take(":")
            value = self.union()
            if self.peek() == ";":
                self.take()
            self.take("}")
            node = ("map", value)
        elif tok.startswith("'"):
            node = ("lit", tok[1:-1])
        elif self.peek() == "<":
            self.take("<")
            args = [self.union()]
            while self.peek() == ",":
                self.take()
                args.append(self.union())
            self.take(">")
            node = ("generic", tok, args)
        else:
            node = ("name", tok)
        while self.peek() == "[]":
            self.take()
            node = ("generic", "Array", [[node]])
        return node


class Extractor:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, FileInfo] = {}
        self.types: dict[str, dict[str, dict[str, Any]]] = {}
        self.external: set[str] = set()
        self.queue: list[tuple[str, Decl]] = []
        self.global_names: dict[tuple[str, tuple[str, ...]], str] = {}
        for out, (rel, name) in ROOTS.items():
            self.global_names[(rel, (name,))] = out

    def file(self, rel: str) -> FileInfo:
        if rel not in self.files:
            self.files[rel] = read_file(self.root, rel)
        return self.files[rel]

    def global_name(self, rel: str, path: tuple[str, ...]) -> str:
        if (rel, path) in self.global_names:
            return self.global_names[(rel, path)]
        head = self.global_names.get((rel, path[:1]))
        if head is not None:
            return ".".join((head, *path[1:]))
        sub = rel.removeprefix("resources/").rsplit("/", 1)
        prefix = sub[0].replace("/", ".") + "." if len(sub) == 2 else ""
        return prefix + ".".join(path)

    def lookup(self, rel: str, scope: tuple[str, ...], dotted: str) -> tuple[str, Decl] | None:
        """Resolve a (dotted) name as TypeScript would from a namespace scope."""
        first, *rest = dotted.split(".")
        info = self.file(rel)
        for depth in range(len(scope), -1, -1):
            base = (*scope[:depth], first)
            if base in info.decls or base in info.namespaces:
                path = (*base, *rest)
                decl = info.decls.get(path)
                return (self.global_name(rel, path), decl) if decl else None
        if first in info.imports:
            target, name = info.imports[first]
            if target.endswith("index.d.ts") or not (self.root / target).exists():
                return (".".join((name, *rest)), Decl("external", target, (name, *rest)))
            return self.lookup(target, (), ".".join((name, *rest)))
        return None

    def render(self, node: Any, rel: str, scope: tuple[str, ...]) -> list[str]:
        """Union members of a parsed type, as notation strings."""
        kind = node[0]
        if kind == "union":
            return [s for member in node[1] for s in self.render(member, rel, scope)]
        if kind == "lit":
            return [f"'{node[1]}'"]
        if kind == "map":
            return [f"Map<{self.join(node[1], rel, scope)}>"]
        if kind == "generic":
            name, args = node[1], node[2]
            if name == "Partial":
                return self.render(("union", args[0]), rel, scope)
            if name in GENERIC:
                return [f"{name}<{self.join(args[0], rel, scope)}>"]
            return ["any"]
        name = node[1]
        if name in BUILTIN:
            return [BUILTIN[name]]
        found = self.lookup(rel, scope, name)
        if found is None:
            raise ValueError(f"cannot resolve {name} in {rel} {scope}")
        gname, decl = found
        if decl.kind == "alias":
            parsed = TypeParser(decl.alias).union()
            return [s for member in parsed for s in self.render(member, decl.file, decl.path[:-1])]
        if decl.kind == "external" or (
            decl.file.startswith("resources/") and len(decl.path) == 1 and gname not in ROOTS
        ):
            self.external.add(gname)
            return [gname]
        self.want(gname, decl)
        return [gname]

    def join(self, members: list[Any], rel: str, scope: tuple[str, ...]) -> str:
        rendered: list[str] = []
        for member in members:
            for text in self.render(member, rel, scope):
                if text not in rendered:
                    rendered.append(text)
        literals = [t for t in rendered if t.startswith("'")]
        if "string" in rendered or len(literals) > MAX_LITERALS:
            # an open enum (or a long one, such as Event.type): the literals say little
            rendered = [t for t in rendered if not t.startswith("'")]
            if "string" not in rendered:
                rendered.insert(0, "string")
        return " | ".join(rendered)

    def want(self, gname: str, decl: Decl) -> None:
        if gname not in self.types:
            self.types[gname] = {}
            self.queue.append((gname, decl))

    def run(self) -> None:
        for out, (rel, name) in ROOTS.items():
            decl = self.file(rel).decls[(name,)]
            self.want(out, decl)
        while self.queue:
            gname, decl = self.queue.pop(0)
            self.types[gname] = self.fields(decl)

    def fields(self, decl: Decl) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        scope = decl.path[:-1]
        for base in decl.extends:
            found = self.lookup(decl.file, scope, base)
            if found and found[1].kind == "interface":
                out.update(self.fields(found[1]))
        for member in decl.members:
            members = TypeParser(member.type_text).union()
            rendered = self.join(members, decl.file, scope).split(" | ")
            nullable = "null" in rendered
            rendered = [t for t in rendered if t != "null"]
            out[member.name] = {
                "optional": member.optional,
                "nullable": nullable,
                "type": " | ".join(rendered) or "null",
            }
        return out

    def events(self) -> dict[str, str]:
        rel = "resources/Events.d.ts"
        info = self.file(rel)
        result: dict[str, str] = {}
        for path, decl in info.decls.items():
            if decl.kind != "interface" or decl.extends != ["EventBase"]:
                continue
            kinds = [m.type_text for m in decl.members if m.name == "type"]
            data = info.decls.get((*path, "Data"))
            objects = [m.type_text for m in (data.members if data else []) if m.name == "object"]
            if kinds and objects:
                found = self.lookup(rel, path, objects[0])
                result[kinds[0].strip("'")] = found[0] if found else objects[0]
        return dict(sorted(result.items()))


def extract(package: Path) -> dict[str, Any]:
    esm = package / "esm"
    version = json.loads((package / "package.json").read_text())["version"]
    api = re.search(r'ApiVersion = "([^"]+)"', (esm / "apiVersion.d.ts").read_text())
    assert api, "no ApiVersion in esm/apiVersion.d.ts"
    extractor = Extractor(esm)
    extractor.run()
    objects = {}
    for name, fields in extractor.types.items():
        literal = fields.get("object", {}).get("type", "")
        if "." not in name and literal.startswith("'") and not name.startswith("Deleted"):
            objects[literal.strip("'")] = name
    return {
        "source": {
            "npm_package": "stripe",
            "npm_version": version,
            "api_version": api.group(1),
            "files": "esm/resources/*.d.ts, esm/shared.d.ts",
            "generated_by": "tests/sandbox/data/extract_stripe_types.py",
        },
        "objects": dict(sorted(objects.items())),
        "types": dict(sorted(extractor.types.items())),
        "external": sorted(extractor.external - set(extractor.types)),
        "events": extractor.events(),
    }


def dumps(data: dict[str, Any]) -> str:
    """JSON with one property (or one event type) a line: compact, and diffs well."""

    def block(mapping: dict[str, Any], indent: str) -> str:
        rows = [f"{indent} {json.dumps(k)}: {json.dumps(v)}" for k, v in mapping.items()]
        return "{\n" + ",\n".join(rows) + f"\n{indent}}}"

    parts = [f" {json.dumps(k)}: {block(data[k], ' ')}" for k in ("source", "objects", "events")]
    parts.append(f' "external": {json.dumps(data["external"])}')
    types = ",\n".join(
        f"  {json.dumps(name)}: {block(fields, '  ')}" for name, fields in data["types"].items()
    )
    parts.append(f' "types": {{\n{types}\n }}')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def npm_pack(version: str, into: Path) -> Path:
    subprocess.run(
        ["npm", "pack", f"stripe@{version}", "--silent", "--pack-destination", str(into)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (tarball,) = into.glob("stripe-*.tgz")
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="data")
    return into / "package"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=DEFAULT_VERSION, help="npm version of `stripe`")
    parser.add_argument("--package", type=Path, help="an unpacked npm package (no download)")
    parser.add_argument("--expect-api-version", default=EXPECT_API_VERSION)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or npm_pack(args.version, Path(tmp))
        data = extract(package)
    if data["source"]["api_version"] != args.expect_api_version:
        print(
            f"warning: stripe@{data['source']['npm_version']} is "
            f"{data['source']['api_version']}, not {args.expect_api_version}",
            file=sys.stderr,
        )
    args.out.write_text(dumps(data))
    print(f"{args.out}: {len(data['types'])} types, stripe@{data['source']['npm_version']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
