"""A small evaluator of GitHub Actions expressions, for reasoning about workflow files in tests.

Covers what darwin.yml and action.yml use, with GitHub's semantics
(docs.github.com/en/actions/reference/workflows-and-actions/expressions):
literals (``'str'``, numbers, ``true``/``false``/``null``), context paths with
``.name``, ``['name']`` and the ``.*`` object filter, ``!``, ``<``, ``<=``, ``>``,
``>=``, ``==``, ``!=`` (strings compared case-insensitively), ``&&`` and ``||``
(which return an operand, not a bool: ``a && 'x' || 'y'`` picks a string), and
the functions ``format``, ``contains``, ``startsWith``, ``endsWith``, ``fromJSON``,
``toJSON``. A missing property is ``null``, as on GitHub.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\],.*])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot parse expression at {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value == value  # NaN is falsy


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, str) != isinstance(b, str):  # GitHub coerces to numbers
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a == b


def _format(fmt: str, *args: Any) -> str:
    def sub(m: re.Match[str]) -> str:
        v = args[int(m.group(1))]
        return ("true" if v else "false") if isinstance(v, bool) else "" if v is None else str(v)

    return (
        re.sub(r"\{(\d+)\}", sub, fmt.replace("{{", "\0").replace("}}", "\1"))
        .replace("\0", "{")
        .replace("\1", "}")
    )


def _contains(hay: Any, needle: Any) -> bool:
    if isinstance(hay, list):
        return any(_eq(x, needle) for x in hay)
    return str(needle).lower() in str(hay if hay is not None else "").lower()


FUNCTIONS = {
    "format": _format,
    "contains": _contains,
    "startswith": lambda a, b: str(a).lower().startswith(str(b).lower()),
    "endswith": lambda a, b: str(a).lower().endswith(str(b).lower()),
    "fromjson": json.loads,
    "tojson": lambda v: json.dumps(v, indent=2),
}


class _Parser:
    def __init__(self, text: str, ctx: dict[str, Any]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.ctx = ctx

    def peek(self) -> str:
        return self.toks[self.i][1] if self.i < len(self.toks) else ""

    def take(self, want: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.i]
        if want is not None and tok[1] != want:
            raise ValueError(f"expected {want!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.or_()
        if self.i != len(self.toks):
            raise ValueError(f"trailing tokens: {self.toks[self.i :]}")
        return value

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            left = left if truthy(left) else right
        return left

    def and_(self) -> Any:
        left = self.cmp()
        while self.peek() == "&&":
            self.take()
            right = self.cmp()
            left = right if truthy(left) else left
        return left

    def cmp(self) -> Any:
        left = self.unary()
        while self.peek() in ("==", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            right = self.unary()
            if op in ("==", "!="):
                left = _eq(left, right) == (op == "==")
            else:
                a, b = float(left or 0), float(right or 0)
                left = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind != "name":
            raise ValueError(f"unexpected {text!r}")
        low = text.lower()
        if low in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[low]
        if self.peek() == "(":
            self.take()
            args = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take(")")
            return FUNCTIONS[low](*args)
        return self.ctx.get(text)

    def postfix(self, value: Any) -> Any:
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                name = self.take()[1]
                value = _star(value) if name == "*" else _get(value, name)
            else:
                key = self.or_()
                self.take("]")
                value = _star(value) if key == "*" else _get(value, key)
        return value


def _get(value: Any, name: Any) -> Any:
    if isinstance(value, list):  # after .*: map the property over the items
        return [_get(v, name) for v in value]
    if isinstance(value, dict):
        return value.get(name)
    return None


def _star(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else []


def evaluate(text: str, ctx: dict[str, Any]) -> Any:
    """The value of ``text`` (with or without ``${{ }}``) in the contexts ``ctx``."""
    text = text.strip()
    whole = re.fullmatch(r"\$\{\{(.*)\}\}", text, flags=re.S)
    return _Parser(whole.group(1) if whole else text, ctx).parse()
