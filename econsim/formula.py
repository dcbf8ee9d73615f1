"""The one check a regression formula passes before patsy sees it.

patsy evaluates every factor of a formula as Python code, so a formula such as
``y ~ I(__import__('os').system('...'))`` would run a command. :func:`validate` reads the
formula with Python's own tokenizer and a small recursive-descent parser and accepts only

* column names of the data (plain ASCII identifiers) and numbers (decimal ints and floats);
* the formula operators ``~ + - * / : **`` and parentheses (``-1`` / ``+0`` drop the
  intercept, ``a:b`` and ``a*b`` interact, ``(a + b)**2`` crosses);
* ``C(col)`` and ``C(col, Treatment(reference="level"))`` / ``C(col, Treatment("level"))``:
  a categorical column with an optional reference level (a string or a number);
* ``log``, ``exp``, ``sqrt`` and ``np.log``, ``np.exp``, ``np.sqrt`` of an arithmetic
  expression of columns and numbers (``+ - * / **``, parentheses, these functions);
* ``I(...)`` of such an arithmetic expression, e.g. ``I(top_rate * 100)``;
* ``center(...)`` and ``standardize(...)`` of such an expression.

and refuses what would hang patsy or exhaust the stack before patsy sees it: numbers
above :data:`MAX_NUMBER` in absolute value (a reference level may be any number), a ``**``
whose exponent is not a number literal within :data:`MAX_EXPONENT` (``x ** 2``,
``x ** -1``, ``(a + b) ** 2``), a power of a power (``9 ** 9 ** 9``, ``(x ** 2) ** 3``:
``I(9**9**9**9)`` would compute the integer forever), parentheses nested deeper than
:data:`MAX_DEPTH` and more than :data:`MAX_TOKENS` tokens.

Anything else (attribute access other than ``np.log``/``np.exp``/``np.sqrt``, any other
call, dunder names, keywords such as ``lambda``, strings outside a reference level,
subscripts, comments, several lines) raises a one-line ``ValueError`` that names the
offending token, its position and what is allowed. :func:`namespace` is what patsy may see
besides the data (the three functions and a stand-in ``np`` holding only them), so even a
formula that slipped past the parser could not reach ``numpy`` or ``os`` through ``np``.

>>> validate("welfare_sum ~ top_rate + C(mechanism)", ["welfare_sum", "top_rate", "mechanism"])
'welfare_sum ~ top_rate + C(mechanism)'
"""

from __future__ import annotations

import ast
import io
import keyword
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

MAX_LENGTH = 2000
MAX_TOKENS = 300  # patsy's evaluator recurses once per operator: ~600 '+' overflow the stack
MAX_DEPTH = 20  # parentheses (and calls) nested at most this deep
MAX_NUMBER = 1e6  # |number literal| at most this
MAX_EXPONENT = 10  # the exponent of ** is a number literal in [-MAX_EXPONENT, MAX_EXPONENT]
MATH = ("log", "exp", "sqrt")
TRANSFORMS = ("center", "standardize")
ALLOWED = ("column names, numbers, the operators ~ + - * / : ** ( ), C(col) or "
           "C(col, Treatment(reference=\"level\")), I(arithmetic of columns and numbers), "
           "log/exp/sqrt (or np.log/np.exp/np.sqrt), center(...), standardize(...)")
_FORMULA_OPS = ("+", "-", "*", "/", ":", "**")
_ARITH_OPS = ("+", "-", "*", "/", "**")
_SKIP = (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)


def namespace() -> dict[str, Any]:
    """The names patsy may evaluate besides the data's columns and its own builtins
    (``C``, ``I``, ``Treatment``, ``center``, ``standardize``)."""
    funcs = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt}
    return {**funcs, "np": SimpleNamespace(**funcs)}


@dataclass(frozen=True)
class _Tok:
    kind: int
    text: str
    col: int


def _tokens(formula: str) -> list[_Tok]:
    """Python tokens of a one-line formula (no comments, no error tokens)."""
    try:
        raw = list(tokenize.generate_tokens(io.StringIO(formula).readline))
    except tokenize.TokenError:
        raise ValueError("unbalanced parentheses (or an unterminated string)") from None
    except SyntaxError as err:  # e.g. an invalid character in an identifier
        raise ValueError(f"cannot read it ({err.msg})") from None
    out = []
    for t in raw:
        if t.type in _SKIP:  # validate() refused line breaks already
            continue
        if t.type == tokenize.COMMENT:
            raise ValueError(f"{t.string[:20]!r} at position {t.start[1]} is not allowed "
                             f"(no comments; allowed: {ALLOWED})")
        if t.type == tokenize.ERRORTOKEN:
            if not t.string.strip():
                continue
            raise ValueError(f"{t.string!r} at position {t.start[1]} is not allowed "
                             f"(allowed: {ALLOWED})")
        out.append(_Tok(t.type, t.string, t.start[1]))
    return out


class _Parser:
    """Recursive descent over the tokens; every method consumes what it accepts."""

    def __init__(self, tokens: list[_Tok], columns: set[str]) -> None:
        self.toks, self.i, self.columns = tokens, 0, columns

    # ------------------------------------------------------------------ helpers
    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def is_op(self, *ops: str, offset: int = 0) -> bool:
        t = self.peek(offset)
        return t is not None and t.kind == tokenize.OP and t.text in ops

    def take(self) -> _Tok:
        t = self.peek()
        if t is None:
            raise ValueError("the formula ends too early (a term or ')' is missing)")
        self.i += 1
        return t

    def expect(self, op: str, what: str) -> None:
        if not self.is_op(op):
            t = self.peek()
            if t is not None and (t.kind == tokenize.STRING or t.text in ".[]{},"):
                raise self.refuse(t, self.why_not(t))
            got = f"{t.text!r} at position {t.col}" if t else "the end of the formula"
            raise ValueError(f"expected {op!r} {what}, got {got}")
        self.i += 1

    def refuse(self, t: _Tok, why: str) -> ValueError:
        return ValueError(f"{t.text!r} at position {t.col} is not allowed: {why} "
                          f"(allowed: {ALLOWED})")

    # ------------------------------------------------------------------ formula level
    def formula(self) -> None:
        if not self.toks or self.is_op("~"):
            raise ValueError("the outcome is missing: write it as 'y ~ x1 + x2'")
        self.terms()
        t = self.peek()
        if t is not None and not self.is_op("~"):
            raise self.refuse(t, self.why_not(t) if t.kind == tokenize.OP
                              else "an operator (+ - * / : **) is missing before it")
        self.expect("~", "between the outcome and the regressors ('y ~ x1 + x2')")
        if self.peek() is None:
            raise ValueError("nothing after '~': name the regressors ('y ~ x1 + x2')")
        self.terms()
        t = self.peek()
        if t is not None:
            raise self.refuse(t, self.why_not(t) if t.kind == tokenize.OP
                              else "an operator (+ - * / : **) is missing before it")

    def terms(self) -> None:
        self.unary(self.term)
        while self.is_op(*_FORMULA_OPS):
            if self.take().text == "**":  # (a + b) ** 2: the exponent is a number literal
                self.exponent()
            else:
                self.unary(self.term)

    def unary(self, atom) -> bool:
        while self.is_op("-", "+"):
            self.i += 1
        return atom()

    def exponent(self) -> None:
        """The exponent after ``**``: a (signed) number literal within MAX_EXPONENT, not
        followed by another ``**``."""
        while self.is_op("-", "+"):
            self.i += 1
        t = self.take()
        if t.kind != tokenize.NUMBER:
            raise self.refuse(t, "the exponent of ** must be a number literal (e.g. x ** 2)")
        if abs(self.number(t)) > MAX_EXPONENT:
            raise self.refuse(t, f"the exponent of ** is at most {MAX_EXPONENT} in absolute "
                                 "value")
        if self.is_op("**"):
            raise self.refuse(self.peek(), "a power of a power (write x ** 4, not "
                                            "x ** 2 ** 2)")

    def term(self) -> None:
        if self.is_op("("):
            self.i += 1
            self.terms()
            self.expect(")", "to close '('")
            return
        t = self.take()
        if t.kind == tokenize.NUMBER:
            self.number(t)
        elif t.kind == tokenize.NAME and self.is_op("(") or self.is_np(t):
            self.call(t)
        elif t.kind == tokenize.NAME:
            self.column(t)
        else:
            raise self.refuse(t, self.why_not(t))

    # ------------------------------------------------------------------ calls
    def is_np(self, t: _Tok) -> bool:
        return t.kind == tokenize.NAME and t.text == "np" and self.is_op(".")

    def call(self, t: _Tok) -> None:
        name = self.function_name(t)
        if name == "C":
            self.categorical()
        elif name in ("I", *TRANSFORMS, *MATH, *(f"np.{m}" for m in MATH)):
            self.expect("(", f"after {name}")
            self.arith()
            self.expect(")", f"to close {name}(")
        else:
            why = ("Treatment(...) only as the second argument of C(col, ...)"
                   if name == "Treatment" else "not an allowed function")
            raise self.refuse(t, why)

    def function_name(self, t: _Tok) -> str:
        """``np.log`` -> ``"np.log"`` (only np.log/np.exp/np.sqrt), else the name."""
        if not self.is_np(t):
            return t.text
        self.i += 1  # the dot
        attr = self.take()
        if attr.kind != tokenize.NAME or attr.text not in MATH or not self.is_op("("):
            raise self.refuse(attr, "only np.log, np.exp and np.sqrt may follow 'np.'")
        return f"np.{attr.text}"

    def categorical(self) -> None:
        self.expect("(", "after C")
        t = self.take()
        if t.kind != tokenize.NAME:
            raise self.refuse(t, "C(...) takes a column name")
        self.column(t)
        if self.is_op(","):
            self.i += 1
            self.contrast()
        self.expect(")", "to close C(")

    def contrast(self) -> None:
        t = self.take()
        if not (t.kind == tokenize.NAME and t.text == "Treatment" and self.is_op("(")):
            raise self.refuse(t, "the second argument of C(col, ...) must be "
                                 "Treatment(reference=\"level\")")
        self.i += 1  # (
        nxt = self.peek()
        if nxt is not None and nxt.kind == tokenize.NAME and nxt.text == "reference":
            self.i += 1
            self.expect("=", "after reference")
        self.literal()
        self.expect(")", "to close Treatment(")

    def literal(self) -> None:
        """A reference level: a plain string literal or a (signed) number."""
        if self.is_op("-"):
            self.i += 1
            self.number(self.take(), bounded=False)
            return
        t = self.take()
        if t.kind == tokenize.NUMBER:
            self.number(t, bounded=False)
        elif t.kind == tokenize.STRING:
            if t.text[0] not in "'\"" or t.text.startswith(("'''", '"""')):
                raise self.refuse(t, "the level must be a plain '...' or \"...\" string")
            if not isinstance(ast.literal_eval(t.text), str):
                raise self.refuse(t, "the level must be a string or a number")
        else:
            raise self.refuse(t, "the reference level must be a string or a number")

    # ------------------------------------------------------------------ arithmetic
    def arith(self) -> bool:
        """An arithmetic expression; True if it has a power (``**``) in it."""
        last = any_power = self.unary(self.arith_atom)
        while self.is_op(*_ARITH_OPS):
            op = self.take()
            if op.text == "**":
                if last:  # the base (the operand before **) has a power already
                    raise self.refuse(op, "a power of an expression with a power in it "
                                          "(write x ** 4, not (x ** 2) ** 2)")
                self.exponent()
                last = any_power = True
            else:
                last = self.unary(self.arith_atom)
                any_power = any_power or last
        return any_power

    def arith_atom(self) -> bool:
        if self.is_op("("):
            self.i += 1
            power = self.arith()
            self.expect(")", "to close '('")
            return power
        t = self.take()
        if t.kind == tokenize.NUMBER:
            self.number(t)
            return False
        if t.kind == tokenize.NAME and (self.is_op("(") or self.is_np(t)):
            name = self.function_name(t)
            if name.removeprefix("np.") not in MATH:
                raise self.refuse(t, "inside a function only log/exp/sqrt (or np.log/"
                                     "np.exp/np.sqrt) may be called")
            self.expect("(", f"after {name}")
            power = self.arith()
            self.expect(")", f"to close {name}(")
            return power
        if t.kind == tokenize.NAME:
            self.column(t)
            return False
        raise self.refuse(t, self.why_not(t) + " (inside a function: arithmetic "
                             "+ - * / ** of columns and numbers)")

    # ------------------------------------------------------------------ leaves
    def number(self, t: _Tok, bounded: bool = True) -> float:
        """A decimal number literal; within MAX_NUMBER unless ``bounded`` is False (a
        reference level: a label, never computed with)."""
        if t.kind != tokenize.NUMBER:
            raise self.refuse(t, "a number must follow '-' here")
        try:
            value = float(t.text)
        except ValueError:
            raise self.refuse(t, "only decimal numbers (e.g. 1, 0.5, 1e-3)") from None
        if bounded and not abs(value) <= MAX_NUMBER:
            raise self.refuse(t, f"numbers are at most {MAX_NUMBER:,.0f} in absolute value "
                                 "(rescale a column instead, e.g. I(x / 1000))")
        return value

    def column(self, t: _Tok) -> None:
        if t.text in self.columns and t.text.isascii() and not keyword.iskeyword(t.text):
            return
        if keyword.iskeyword(t.text):
            raise self.refuse(t, "Python keywords are not columns")
        if t.text.startswith("__"):
            raise self.refuse(t, "dunder names are not columns")
        if t.text in ("C", "I", "Treatment", "np", *MATH, *TRANSFORMS):
            raise self.refuse(t, "a function name must be followed by '('")
        raise ValueError(f"unknown column {t.text!r}")

    @staticmethod
    def why_not(t: _Tok) -> str:
        if t.kind == tokenize.STRING:
            return "strings only as the reference level of C(col, Treatment(\"level\"))"
        if t.kind == tokenize.OP and t.text == ".":
            return "attribute access (only np.log, np.exp, np.sqrt)"
        if t.kind == tokenize.OP and t.text in ("[", "]", "{", "}"):
            return "no subscripts, lists or sets"
        if t.kind == tokenize.OP and t.text == ",":
            return "a comma only in C(col, Treatment(...))"
        if t.kind == tokenize.OP and t.text == ")":
            return "')' without a matching '('"
        return "not a column, a number or an allowed operator"


def validate(formula: str, columns: Iterable[Any]) -> str:
    """``formula`` unchanged if it uses only what the module docstring allows, with every
    column name among ``columns``; else a one-line ``ValueError`` (without the formula or
    the column list: callers add them)."""
    if not isinstance(formula, str):
        raise ValueError(f"must be a string, not {type(formula).__name__}")
    if len(formula) > MAX_LENGTH:
        raise ValueError(f"is {len(formula)} characters long (at most {MAX_LENGTH})")
    if not formula.isprintable():
        raise ValueError("a formula is one line of printable characters")
    if formula.count("~") != 1:
        raise ValueError("must look like 'y ~ x1 + C(x2)' (exactly one '~')")
    tokens = _tokens(formula)
    depth = 0
    for t in tokens:
        if t.kind == tokenize.OP and t.text in "()":
            depth += 1 if t.text == "(" else -1
            if depth > MAX_DEPTH:
                raise ValueError(f"parentheses are nested more than {MAX_DEPTH} deep (at "
                                 f"position {t.col})")
    if len(tokens) > MAX_TOKENS:
        raise ValueError(f"has {len(tokens)} tokens (at most {MAX_TOKENS}: names, numbers, "
                         "operators and parentheses)")
    _Parser(tokens, {str(c) for c in columns}).formula()
    return formula


def columns_used(formula: str, columns: Iterable[Any]) -> tuple[list[str], list[str]]:
    """``(columns the formula names, those inside C(...))``, in order; empty lists if the
    formula cannot be read (``validate`` says why)."""
    known = {str(c) for c in columns}
    try:
        toks = _tokens(formula)
    except ValueError:
        return [], []
    used = [t.text for t in toks if t.kind == tokenize.NAME and t.text in known]
    categorical = [toks[j + 2].text for j in range(len(toks) - 2)
                   if toks[j].text == "C" and toks[j + 1].text == "("
                   and toks[j + 2].text in known]
    return list(dict.fromkeys(used)), list(dict.fromkeys(categorical))
