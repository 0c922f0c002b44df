"""Two import-linter contracts of meter's own (pyproject.toml, `make lint`), for rules that no built-in
contract type states: they look at the names a module takes from a library, not only at which
modules it imports.

- `forbidden_names`: the modules matched must not use these names of a library (the features' rules
  never read `flask.g` or `flask.request`: what a rule needs of the request is an argument).
- `no_private_names`: no module takes a library's private name (`from x import _y`, or `Name._y` on
  a name imported from a library): a library's insides change without notice between releases.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck
from importlinter.domain.helpers import module_expressions_to_modules


def _tree(module: str) -> ast.Module | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text(), spec.origin)


def _bindings(tree: ast.Module, root: str) -> dict[str, str]:
    """Local name -> the library's dotted name it stands for, for every import of a library (not of `root`)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != root:
                    bound[alias.asname or alias.name.split(".")[0]] = (alias.asname and alias.name) or alias.name.split(
                        "."
                    )[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] != root:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _uses(tree: ast.Module, root: str) -> list[tuple[int, str]]:
    """(line, dotted library name) for each name taken from a library: imported, or an attribute of one."""
    bound = _bindings(tree, root)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] != root:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            found.append((node.lineno, f"{bound[node.value.id]}.{node.attr}"))
    return found


class _NamesContract(Contract):
    def _violations(self, graph: grimp.ImportGraph) -> list[str]:
        raise NotImplementedError

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        found = self._violations(graph)
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["found"]:
            output.print_error(line, bold=False)
        output.new_line()


class ForbiddenNamesContract(_NamesContract):
    type_name = "forbidden_names"
    modules = fields.ListField(subfield=fields.ModuleExpressionField())
    forbidden_names = fields.ListField(subfield=fields.StringField())

    def _violations(self, graph: grimp.ImportGraph) -> list[str]:
        forbidden = set(self.forbidden_names)  # type: ignore[arg-type]
        root = next(iter(self.session_options["root_packages"]))
        found = []
        for module in sorted(m.name for m in module_expressions_to_modules(graph, self.modules)):  # type: ignore[arg-type]
            tree = _tree(module)
            for line, name in _uses(tree, root) if tree else ():
                if name in forbidden:
                    found.append(f"{module} (l.{line}) uses {name}")
        return found


class NoPrivateNamesContract(_NamesContract):
    type_name = "no_private_names"
    modules = fields.ListField(subfield=fields.ModuleExpressionField())
    allowed = fields.ListField(subfield=fields.StringField(), required=False)

    def _violations(self, graph: grimp.ImportGraph) -> list[str]:
        root = next(iter(self.session_options["root_packages"]))
        allowed = list(self.allowed or ())  # type: ignore[arg-type]
        found = []
        for module in sorted(m.name for m in module_expressions_to_modules(graph, self.modules)):  # type: ignore[arg-type]
            tree = _tree(module)
            for line, name in _uses(tree, root) if tree else ():
                private = any(
                    p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in name.split(".")
                )
                if (
                    private
                    and not name.endswith("._")
                    and not any(name == a or name.startswith(a + ".") for a in allowed)
                ):
                    found.append(f"{module} (l.{line}) uses {name}")
        return found
