"""The structure measures every module meets, checked over the source tree itself.

Each measure is one checker (a plain function that returns its offenders as readable lines)
and one test that runs it on the repository. Each checker also gets a hand-made bad example
below, so a checker that stopped finding anything would fail too.

- ``models/`` never imports ``app/``: the deep-learning side knows nothing of HTTP.
- no import cycles among the modules of ``app/`` and ``models/``, imports inside functions
  included; ``from models import world`` is an edge to the module ``models.world``,
  ``from models.analysis import dissect`` to ``models.analysis.dissect``, relative imports
  resolve the same way, and a package's ``__init__`` importing its submodules is an edge too.
  Importing ``a.b.c`` is an edge to ``a.b.c`` only, not to the packages ``a`` and ``a.b``
  whose ``__init__`` Python also runs: counting those would make every package that imports
  its own submodules a cycle.
- modules of at most 450 lines, functions and methods of at most 80, route handlers of at
  most 22; a function's length runs from its ``def`` line to its last line, decorators not
  counted.
- string literals, docstrings aside, at most 40 % of a module's bytes; a literal counts by
  the bytes of the text it holds, an f-string by its literal parts only.
- no comment or docstring that carries a date or an issue or finding number (history
  belongs in git).
- nothing in README.md or docs/ points outside the repository or carries a date or an issue
  number, and no comment or docstring cites notes that are not in the repository.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "models")
COMMENTED_FOLDERS = ("app", "models", "static", "templates", "bench", "scripts", "tests")
COMMENTED_SUFFIXES = (".py", ".js", ".css", ".html")
SKIPPED_PARTS = {"__pycache__", "node_modules"}

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
MAX_ROUTE_LINES = 22
MAX_LITERAL_SHARE = 0.40
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket"}

MONTHS = (
    "Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    "|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?"
)
DATE = re.compile(r"\b(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b")
MONTH_YEAR = re.compile(rf"\b(?:{MONTHS})\.?\s+(?:\d{{1,2}}(?:st|nd|rd|th)?,?\s+)?(?:19|20)\d\d\b")
ISSUE = re.compile(r"\b(?:issue|finding)s?\s*(?:no\.?\s*)?#?\d+", re.IGNORECASE)
HASH_NUMBER = re.compile(r"#\d{1,3}\b")
# "conv4 #5" is how the project names a unit (layer, then channel): not an issue number.
UNIT_BEFORE_HASH = re.compile(r"(?:\b(?:conv|fc|pool)\d+|\b(?:unit|units|channel|channels|tile))\s*$", re.IGNORECASE)
OUTSIDE = re.compile(r"\.\./+(?:shared|\.library)\b")
MARKDOWN_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def python_files(root: Path, folders: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        found += [p for p in sorted((root / folder).rglob("*.py")) if not SKIPPED_PARTS & set(p.parts)]
    return found


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# --- (a) import cycles -------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    return {module_name(p, root): p for p in python_files(root, packages)}


def _known_prefix(name: str, known: set[str]) -> str | None:
    """``name`` itself when it is a project module, else its longest prefix that is one."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _relative_base(module: str, is_package: bool, level: int) -> str:
    """The package a relative import of ``level`` dots starts from."""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    return ".".join(parts[: len(parts) - (level - 1)]) if level - 1 <= len(parts) else ""


def imported_modules(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules ``source`` (the module ``module``) imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {m for alias in node.names if (m := _known_prefix(alias.name, known))}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                start = _relative_base(module, is_package, node.level)
                base = ".".join(p for p in (start, base) if p)
            for alias in node.names:
                target = _known_prefix(f"{base}.{alias.name}", known) if alias.name != "*" else None
                if target != f"{base}.{alias.name}":
                    target = _known_prefix(base, known)
                if target:
                    found.add(target)
    found.discard(module)
    return found


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    known = set(modules)
    return {
        name: imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known)
        for name, path in modules.items()
    }


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module: each holds at least one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def shortest_cycle(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """A shortest path ``start -> ... -> start`` inside one component."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, set()) & members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return [start]


def check_import_cycles(root: Path, packages: Iterable[str] = PACKAGES) -> list[str]:
    graph = import_graph(root, packages)
    offenders = []
    for component in strongly_connected(graph):
        cycle = " -> ".join(shortest_cycle(graph, component[0], set(component)))
        offenders.append(f"{len(component)} modules import each other ({', '.join(component)}), e.g. {cycle}")
    return offenders


def check_layering(root: Path) -> list[str]:
    """Imports from ``models/`` into ``app/``: the deep-learning side knows nothing of HTTP."""
    graph = import_graph(root)
    return [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        if module.split(".")[0] == "models"
        for target in sorted(targets)
        if target.split(".")[0] == "app"
    ]


# --- (b, c, d) lengths -------------------------------------------------------------------


def check_module_lengths(root: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    offenders = []
    for path in python_files(root, PACKAGES):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            offenders.append(f"{relative(path, root)}: {lines} lines")
    return offenders


FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, FunctionNode]]:
    """Every function and method, nested ones included, with its dotted qualified name."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def length(node: FunctionNode) -> int:
    """Lines from the ``def`` line to the last line (decorators not counted)."""
    end = node.end_lineno if node.end_lineno is not None else node.lineno
    return end - node.lineno + 1


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int, int]]:
    return [(name, node.lineno, length(node)) for name, node in functions(ast.parse(source)) if length(node) > limit]


def check_function_lengths(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    offenders = []
    for path in python_files(root, PACKAGES):
        for name, line, lines in long_functions(path.read_text(encoding="utf-8"), limit):
            offenders.append(f"{relative(path, root)}:{line} {name}: {lines} lines")
    return offenders


def is_route(node: FunctionNode) -> bool:
    """Decorated with ``@<something>router.<method>(...)``, as FastAPI routes are."""
    for decorator in node.decorator_list:
        func = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ROUTE_METHODS
            and isinstance(func.value, ast.Name)
            and func.value.id.endswith("router")
        ):
            return True
    return False


def long_routes(source: str, limit: int = MAX_ROUTE_LINES) -> list[tuple[str, int, int]]:
    return [
        (name, node.lineno, length(node))
        for name, node in functions(ast.parse(source))
        if is_route(node) and length(node) > limit
    ]


def check_route_lengths(root: Path, limit: int = MAX_ROUTE_LINES) -> list[str]:
    offenders = []
    for path in python_files(root, ["app/routes"]):
        for name, line, lines in long_routes(path.read_text(encoding="utf-8"), limit):
            offenders.append(f"{relative(path, root)}:{line} {name}: {lines} lines")
    return offenders


# --- (e) prose stored as strings ---------------------------------------------------------


def docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of the module, class and function docstring nodes."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


def literal_share(source: str) -> float:
    """Bytes held by string literals (docstrings aside) over the module's bytes."""
    total = len(source.encode("utf-8"))
    if not total:
        return 0.0
    tree = ast.parse(source)
    skipped = docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skipped |= {id(child) for child in ast.walk(node) if child is not node}
    held = 0
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            held += len(node.value.encode("utf-8") if isinstance(node.value, str) else node.value)
        elif isinstance(node, ast.JoinedStr):
            held += sum(
                len(part.value.encode("utf-8"))
                for part in node.values
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            )
    return held / total


def check_literal_share(root: Path, limit: float = MAX_LITERAL_SHARE) -> list[str]:
    offenders = []
    for path in python_files(root, PACKAGES):
        share = literal_share(path.read_text(encoding="utf-8"))
        if share > limit:
            offenders.append(f"{relative(path, root)}: {share:.0%} of its bytes are string literals")
    return offenders


# --- (f) history in comments and docstrings ----------------------------------------------


def python_notes(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and module, class or function docstring."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    tree = ast.parse(source)
    wanted = docstring_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in wanted and isinstance(node, ast.Constant):
            yield node.lineno, str(node.value)


def c_style_notes(source: str, line_comments: bool = True) -> Iterator[tuple[int, str]]:
    """Comments of JavaScript (``//`` and ``/* */``) or CSS (``/* */`` only); strings skipped."""
    i, line, size = 0, 1, len(source)
    while i < size:
        char = source[i]
        if char in "'\"`":
            end = i + 1
            while end < size and source[end] != char:
                end += 2 if source[end] == "\\" else 1
            line += source.count("\n", i, end + 1)
            i = end + 1
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            end = size if end < 0 else end + 2
            yield line, source[i:end]
            line += source.count("\n", i, end)
            i = end
        elif line_comments and source.startswith("//", i):
            end = source.find("\n", i)
            end = size if end < 0 else end
            yield line, source[i:end]
            i = end
        else:
            line += char == "\n"
            i += 1


def markup_notes(source: str) -> Iterator[tuple[int, str]]:
    """HTML (``<!-- -->``) and Jinja (``{# #}``) comments."""
    for match in re.finditer(r"<!--.*?-->|\{#.*?#\}", source, re.DOTALL):
        yield source.count("\n", 0, match.start()) + 1, match.group()


def notes(path: Path, source: str) -> Iterator[tuple[int, str]]:
    if path.suffix == ".py":
        yield from python_notes(source)
    elif path.suffix == ".js":
        yield from c_style_notes(source)
    elif path.suffix == ".css":
        yield from c_style_notes(source, line_comments=False)
    elif path.suffix == ".html":
        yield from markup_notes(source)


def history_marks(text: str, comment: bool = True) -> list[tuple[int, str]]:
    """(offset, mark) of every date and issue or finding number in one comment or docstring."""
    marks = [(m.start(), m.group()) for pattern in (DATE, MONTH_YEAR, ISSUE) for m in pattern.finditer(text)]
    if comment:
        taken = [range(m.start(), m.end()) for m in ISSUE.finditer(text)]
        marks += [
            (m.start(), m.group())
            for m in HASH_NUMBER.finditer(text)
            if not UNIT_BEFORE_HASH.search(text[: m.start()]) and not any(m.start() in span for span in taken)
        ]
    return sorted(marks)


def history_in(path: Path, source: str) -> list[tuple[int, str]]:
    """(line, mark) of every date and issue or finding number in the file's comments and docstrings."""
    found = []
    for line, text in notes(path, source):
        is_comment = path.suffix != ".py" or text.startswith("#")
        for offset, mark in history_marks(text, comment=is_comment):
            found.append((line + text.count("\n", 0, offset), mark))
    return found


def commented_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder in COMMENTED_FOLDERS:
        found += [
            p
            for p in sorted((root / folder).rglob("*"))
            if p.suffix in COMMENTED_SUFFIXES and p.is_file() and not SKIPPED_PARTS & set(p.parts)
        ]
    return found


def check_history(root: Path) -> list[str]:
    offenders = []
    for path in commented_files(root):
        for line, mark in history_in(path, path.read_text(encoding="utf-8")):
            offenders.append(f"{relative(path, root)}:{line} {mark!r}")
    return offenders


# --- (g) the docs stay inside the repository ---------------------------------------------


def doc_files(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").rglob("*.md"))] if p.is_file()]


def outside_pointers(path: Path, root: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = [m.group() for m in OUTSIDE.finditer(text)]
    for match in MARKDOWN_LINK.finditer(text):
        target = match.group(1).split("#")[0]
        if not target or re.match(r"^[a-zA-Z][\w+.-]*:", target) or target.startswith("/"):
            continue  # a web address, an anchor on the same page, or a path on the server
        resolved = (path.parent / target).resolve()
        if not resolved.is_relative_to(root.resolve()):
            found.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            found.append(f"{target} (no such file)")
    return found


def check_docs_stay_inside(root: Path) -> list[str]:
    return [f"{relative(path, root)}: {hit}" for path in doc_files(root) for hit in outside_pointers(path, root)]


def check_docs_history(root: Path) -> list[str]:
    offenders = []
    for path in doc_files(root):
        text = path.read_text(encoding="utf-8")
        for offset, mark in history_marks(text, comment=False):
            offenders.append(f"{relative(path, root)}:{text.count(chr(10), 0, offset) + 1} {mark!r}")
    return offenders


def check_code_stays_inside(root: Path) -> list[str]:
    """Comments and docstrings that cite the team's notes outside the repository."""
    design_in_repo = any(root.rglob("DESIGN.md"))
    offenders = []
    for path in commented_files(root):
        for line, text in notes(path, path.read_text(encoding="utf-8")):
            hits = [m.group() for m in OUTSIDE.finditer(text)]
            if not design_in_repo:
                hits += re.findall(r"\bDESIGN\.md\b", text)
            offenders += [f"{relative(path, root)}:{line} {hit!r}" for hit in hits]
    return offenders


# --- the measures on this repository -----------------------------------------------------


def report(what: str, offenders: list[str]) -> str:
    return f"{len(offenders)} {what}:\n  " + "\n  ".join(offenders)


def test_no_import_cycles() -> None:
    offenders = check_import_cycles(ROOT)
    assert not offenders, report("import cycles among app/ and models/ (imports inside functions count)", offenders)


def test_models_never_import_app() -> None:
    offenders = check_layering(ROOT)
    assert not offenders, report("imports from models/ into app/", offenders)


def test_no_module_over_450_lines() -> None:
    offenders = check_module_lengths(ROOT)
    assert not offenders, report(f"modules in app/ and models/ over {MAX_MODULE_LINES} lines", offenders)


def test_no_function_over_80_lines() -> None:
    offenders = check_function_lengths(ROOT)
    assert not offenders, report(
        f"functions in app/ and models/ over {MAX_FUNCTION_LINES} lines (def line to end)", offenders
    )


def test_route_handlers_are_short() -> None:
    offenders = check_route_lengths(ROOT)
    assert not offenders, report(f"route handlers in app/routes/ over {MAX_ROUTE_LINES} lines", offenders)


def test_no_module_is_mostly_string_literals() -> None:
    offenders = check_literal_share(ROOT)
    assert not offenders, report(
        f"modules in app/ and models/ whose string literals (docstrings aside) pass {MAX_LITERAL_SHARE:.0%}",
        offenders,
    )


def test_no_history_in_comments_or_docstrings() -> None:
    offenders = check_history(ROOT)
    assert not offenders, report("comments or docstrings carrying a date or an issue/finding number", offenders)


def test_docs_point_only_inside_the_repository() -> None:
    offenders = check_docs_stay_inside(ROOT)
    assert not offenders, report("pointers out of README.md and docs/", offenders)


def test_docs_carry_no_history() -> None:
    offenders = check_docs_history(ROOT)
    assert not offenders, report(
        "dates or issue/finding numbers in README.md and docs/ (history belongs in git)", offenders
    )


def test_code_cites_nothing_outside_the_repository() -> None:
    offenders = check_code_stays_inside(ROOT)
    assert not offenders, report("comments or docstrings citing notes that are not in the repository", offenders)


# --- every checker catches a hand-made bad example ---------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_cycle_checker_counts_imports_inside_functions(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/a.py": "from app import b\n",
            "app/b.py": "def late() -> None:\n    import app.a\n",
            "models/__init__.py": "",
        },
    )
    offenders = check_import_cycles(tmp_path)
    assert len(offenders) == 1 and "app.a -> app.b -> app.a" in offenders[0]


def test_cycle_checker_resolves_relative_imports_and_package_inits(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "models/__init__.py": "",
            "models/world/__init__.py": "from .shapes import draw\n",
            "models/world/shapes.py": "from .. import world\n",
        },
    )
    assert import_graph(tmp_path)["models.world.shapes"] == {"models.world"}
    assert import_graph(tmp_path)["models.world"] == {"models.world.shapes"}
    assert check_import_cycles(tmp_path) == [
        "2 modules import each other (models.world, models.world.shapes), "
        "e.g. models.world -> models.world.shapes -> models.world"
    ]


def test_cycle_checker_tells_a_submodule_from_a_name_in_its_package(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "models/__init__.py": "",
            "models/analysis/__init__.py": "from models.analysis import dissect\n",
            "models/analysis/concepts.py": "",
            "models/analysis/dissect.py": "from models.analysis import concepts\nfrom models import analysis\n",
            "models/card.py": "from models.analysis import THRESHOLD\nimport models.analysis.dissect as d\n",
        },
    )
    graph = import_graph(tmp_path)
    assert graph["models.analysis"] == {"models.analysis.dissect"}
    assert graph["models.analysis.dissect"] == {"models.analysis.concepts", "models.analysis"}
    assert graph["models.card"] == {"models.analysis", "models.analysis.dissect"}
    assert "models.analysis.dissect -> models.analysis" in check_import_cycles(tmp_path)[0]


def test_layering_checker(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/settings.py": "from models import nets\n",
            "models/__init__.py": "",
            "models/nets.py": "def late():\n    from app.settings import Settings\n",
        },
    )
    assert check_layering(tmp_path) == ["models.nets imports app.settings"]


def test_module_length_checker(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app/big.py": "x = 1\n" * 451, "models/fine.py": "x = 1\n" * 450})
    assert check_module_lengths(tmp_path) == ["app/big.py: 451 lines"]


def test_function_length_checker_sees_methods_and_nested_functions() -> None:
    line = "    x = 1\n"
    fine = "@decorated\n@another\ndef fine():\n" + line * 79
    method = "class C:\n    def long(self):\n" + "    " * 2 + line.lstrip() + ("    " + line) * 79
    nested = "def outer():\n    def inner():\n" + ("    " + line) * 80
    found = {name: lines for name, _, lines in long_functions(fine + method + nested)}
    assert found == {"C.long": 81, "outer": 82, "outer.inner": 81}


def test_route_length_checker(tmp_path: Path) -> None:
    line = "    x = 1\n"
    source = '@router.post("/a",\n    summary="decorator lines do not count")\nasync def long_route():\n' + line * 22
    source += '@router.get("/b")\ndef short_route():\n' + line * 21
    source += "def plain_helper():\n" + line * 40
    assert long_routes(source) == [("long_route", 3, 23)]
    write_tree(tmp_path, {"app/routes/api.py": source, "app/other.py": source})
    assert check_route_lengths(tmp_path) == ["app/routes/api.py:3 long_route: 23 lines"]


def test_literal_share_checker_leaves_docstrings_out_and_counts_fstring_text() -> None:
    docstring = '"""' + "A long docstring. " * 50 + '"""\n'
    assert literal_share(docstring + "x = 1\n") == 0.0
    prose = docstring + 'TEXT = "' + "words " * 40 + '"\n'
    assert literal_share(prose) < MAX_LITERAL_SHARE
    heavy = 'TEXT = "' + "words " * 40 + '"\n'
    assert literal_share(heavy) > 0.9
    fstring = 'x = f"{value}{value}{value}{value}{value}ab"\n'
    assert literal_share(fstring) == pytest.approx(2 / len(fstring))


def test_literal_share_checker_on_a_tree(tmp_path: Path) -> None:
    write_tree(tmp_path, {"models/card.py": 'CARD = """' + "prose " * 100 + '"""\n', "app/ok.py": "x = 1\n"})
    assert check_literal_share(tmp_path) == ["models/card.py: 98% of its bytes are string literals"]


def test_history_checker_finds_dates_and_numbers_in_every_kind_of_comment(tmp_path: Path) -> None:
    day = "20" + "26-11-26"
    write_tree(
        tmp_path,
        {
            "app/a.py": f'"""Written {day}."""\n\n\ndef f():\n    """See issue 5."""\n'
            "    return 1  # since finding 12\n",
            "models/b.py": "x = 1  # the fix for #7\ny = 2  # conv4 #5 and unit #3 are units\n",
            "static/js/c.js": "const u = 'http://x'; // as of November 2026\n/* issue #9 */\n",
            "static/css/d.css": "a { color: #000; } /* Nov 3, 2026 */\n",
            "templates/e.html": "<p>#12</p>\n<!-- finding 3 -->\n{# issue 4 #}\n",
            "tests/test_f.py": f'WHEN = "{day}"  # a string, not a comment: allowed\n',
        },
    )
    assert check_history(tmp_path) == [
        "app/a.py:6 'finding 12'",
        f"app/a.py:1 '{day}'",
        "app/a.py:5 'issue 5'",
        "models/b.py:1 '#7'",
        "static/css/d.css:1 'Nov 3, 2026'",
        "static/js/c.js:1 'November 2026'",
        "static/js/c.js:2 'issue #9'",
        "templates/e.html:2 'finding 3'",
        "templates/e.html:3 'issue 4'",
    ]


def test_history_checker_lets_ordinary_prose_through() -> None:
    text = "Zeiler & Fergus, 2014; may 2000 images; conv4 #16 in cars; the top-5 issues; 128 px"
    assert history_marks(text) == []
    assert history_marks("# see #12 and issue #4") == [(6, "#12"), (14, "issue #4")]
    assert list(c_style_notes("const s = '// not a comment'; const t = \"/* nor this */\";\n")) == []


def test_docs_history_checker(tmp_path: Path) -> None:
    write_tree(tmp_path, {"README.md": "Fast.\n", "docs/A.md": "Measured on 3 March 2026.\n\nAs finding 11 showed.\n"})
    assert check_docs_history(tmp_path) == ["docs/A.md:1 'March 2026'", "docs/A.md:3 'finding 11'"]


def test_docs_checker_finds_pointers_outside(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "README.md": "See `../shared/DESIGN.md` and [the notes](../.library/x.md).\n",
            "docs/A.md": "[up](../../elsewhere.md), [gone](missing.md), [ok](../README.md), "
            "[web](https://example.org), [api](/api/v1/models), [here](#top)\n",
        },
    )
    assert check_docs_stay_inside(tmp_path) == [
        "README.md: ../shared",
        "README.md: ../.library",
        "README.md: ../.library/x.md (outside the repository)",
        "docs/A.md: ../../elsewhere.md (outside the repository)",
        "docs/A.md: missing.md (no such file)",
    ]


def test_code_citation_checker(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/a.py": '"""The API (DESIGN.md section 3)."""\nx = "DESIGN.md in a string is data"\n',
            "static/js/b.js": "// see ../shared/notes\n",
        },
    )
    assert check_code_stays_inside(tmp_path) == ["app/a.py:1 'DESIGN.md'", "static/js/b.js:1 '../shared'"]
    write_tree(tmp_path, {"docs/DESIGN.md": "The notes, kept in the repository.\n"})
    assert check_code_stays_inside(tmp_path) == ["static/js/b.js:1 '../shared'"]
