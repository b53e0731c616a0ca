"""The type stubs (__init__.pyi) describe what the package really has."""

import ast
import inspect
import pathlib

import atomap


def stub_tree():
    return ast.parse((pathlib.Path(atomap.__file__).parent / "__init__.pyi").read_text())


def test_stubs_name_every_export_and_are_installed_with_py_typed():
    names = set()
    for node in stub_tree().body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    assert set(atomap.__all__) <= names, set(atomap.__all__) - names
    assert (pathlib.Path(atomap.__file__).parent / "py.typed").exists()


def test_stub_methods_exist_and_have_docstrings():
    for node in stub_tree().body:
        if not isinstance(node, ast.ClassDef) or issubclass(getattr(atomap, node.name), Exception):
            continue
        cls = getattr(atomap, node.name)
        for member in node.body:
            if isinstance(member, ast.FunctionDef):
                assert hasattr(cls, member.name), (node.name, member.name)
                if not member.name.startswith("__") and node.name != "Codec":
                    assert inspect.getdoc(getattr(cls, member.name)), (node.name, member.name)
    assert inspect.getdoc(atomap.open) and inspect.getdoc(atomap.Atom.swap)
    assert atomap.Snapshot.__module__ == "atomap"
