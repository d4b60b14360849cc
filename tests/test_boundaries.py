"""Package boundaries, read from the source: who may import what, and who may walk the conference."""

from __future__ import annotations

import ast
import pathlib

import pytest

import dutycall

ROOT = pathlib.Path(dutycall.__file__).parent
#: The conference's users: they may import ``dutycall.conference`` itself, never its modules.
USERS = ("rollcall", "web", "media", "greetings")
#: What the roll-call side must not read off conference objects (the public queries answer instead).
PRIVATE_ATTRIBUTES = {"forwarders", "last_frame_at", "publications", "identity", "participants", "codecs"}
#: Modules that talk to the conference only through its public API, attributes included.
NO_WALKING = [*sorted((ROOT / "rollcall").glob("*.py")), ROOT / "web" / "rollcalls.py",
              *sorted((ROOT / "media").glob("*.py")), *sorted((ROOT / "greetings").glob("*.py")),
              ROOT / "web" / "greetings.py"]


def _modules(package: str) -> list[pathlib.Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: pathlib.Path, package: list[str] | None = None) -> list[tuple[int, str]]:
    """Every module ``path`` imports (absolute names, relative ones resolved against its
    package, e.g. ["dutycall", "web"]), with its line."""
    package = package or ["dutycall", *path.relative_to(ROOT).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
            # "from ..conference import errors" names a submodule too.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names
                      if (ROOT.parent / module.replace(".", "/") / f"{alias.name}.py").exists()]
    return found


@pytest.mark.parametrize("package", USERS)
def test_conference_users_import_only_its_public_names(package):
    offending = [f"{path.relative_to(ROOT.parent)}:{line}: {module}"
                 for path in _modules(package) for line, module in _imports(path)
                 if module.startswith("dutycall.conference.")]
    assert not offending, "import these from dutycall.conference (add them to its __all__ if needed):\n" + \
        "\n".join(offending)


def test_web_imports_no_aiortc():
    offending = [f"{path.relative_to(ROOT.parent)}:{line}: {module}"
                 for path in _modules("web") for line, module in _imports(path)
                 if module.split(".")[0] in ("aiortc", "aioice")]
    assert not offending, "\n".join(offending)


def test_the_import_check_sees_relative_and_submodule_imports(tmp_path):
    # The check must not pass by not looking: a module of web that reached in would be caught.
    probe = tmp_path / "probe.py"
    probe.write_text("from ..conference.errors import InvalidState\nfrom ..conference import room\n"
                     "from ..conference import Conference\nimport aiortc.mediastreams\n")
    modules = [m for _, m in _imports(probe, ["dutycall", "web"])]
    assert {"dutycall.conference.errors", "dutycall.conference.room", "aiortc.mediastreams"} <= set(modules)
    assert "dutycall.conference.Conference" not in modules  # a name, not a module


@pytest.mark.parametrize("path", NO_WALKING, ids=lambda p: str(p.relative_to(ROOT)))
def test_roll_calls_never_walk_the_conference_s_objects(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    offending = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            receiver = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
            if node.attr in PRIVATE_ATTRIBUTES or (node.attr == "rooms" and receiver == "conference"):
                offending.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: .{node.attr}")
    assert not offending, "use the conference's public queries instead:\n" + "\n".join(offending)
