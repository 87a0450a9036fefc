"""docker/split_requirements.py (``make freeze``): the runtime closure follows environment
markers and requested extras; everything else installed goes to the development set."""
import importlib.util
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("split_requirements", REPO / "docker" / "split_requirements.py")
split = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(split)

PY311 = {"python_version": "3.11", "python_full_version": "3.11.9", "sys_platform": "linux",
         "platform_system": "Linux"}


class FakeDist:
    def __init__(self, name, version="1.0", requires=()):
        self.metadata = {"Name": name}
        self.version = version
        self.requires = list(requires)


def fake_dists():
    dists = [
        FakeDist("app", requires=[
            "Core-Lib>=1",                                    # name canonicalised: core-lib
            "old_backport; python_version < '3.10'",          # not on 3.11
            "new-only; python_version >= '3.11'",
            "win-only; sys_platform == 'win32'",
            "test-tool; extra == 'test'",                     # an extra nobody asks for
            "etils[epath]>=1; python_version >= '3.11'",      # an extra that is asked for
        ]),
        FakeDist("core_lib", requires=["tiny"]),
        FakeDist("tiny"), FakeDist("old-backport"), FakeDist("new-only"), FakeDist("win-only"),
        FakeDist("test-tool"), FakeDist("pytest"),
        FakeDist("etils", requires=["fsspec; extra == 'epath'", "einops; extra == 'enp'"]),
        FakeDist("fsspec"), FakeDist("einops"),
    ]
    return {split.canonical(d.metadata["Name"]): d for d in dists}


@pytest.mark.parametrize("spec, extras, expected", [
    ("numpy", (), True),
    ("zipp>=3.1.0; python_version < '3.10'", (), False),
    ("zipp>=3.1.0; python_version >= '3.10'", (), True),
    ("pytest; extra == 'test'", (), False),
    ("pytest; extra == 'test'", ("test",), True),
    ("fsspec; extra == 'epath' and python_version < '3.0'", ("epath",), False),
])
def test_markers_are_evaluated(spec, extras, expected):
    assert split.applies(spec, extras, PY311) is expected


def test_closure_follows_markers_and_requested_extras():
    assert split.closure(["app"], fake_dists(), PY311) == {"app", "core-lib", "tiny", "new-only", "etils", "fsspec"}
    # the same tree for Python 3.9 takes the backport and leaves what needs 3.11 out
    py39 = dict(PY311, python_version="3.9", python_full_version="3.9.18")
    assert split.closure(["app"], fake_dists(), py39) == {"app", "core-lib", "tiny", "old-backport"}


def test_main_writes_two_pinned_sets(tmp_path, monkeypatch):
    (tmp_path / "setup.cfg").write_text("[options]\ninstall_requires =\n    app==1.0\n")
    dists = fake_dists()
    monkeypatch.setattr(split, "installed", lambda: dists)
    real_closure = split.closure
    monkeypatch.setattr(split, "closure", lambda roots, d: real_closure(roots, d, PY311))
    monkeypatch.chdir(tmp_path)
    assert split.main(str(tmp_path / "setup.cfg")) == 0
    runtime = (tmp_path / "requirements.txt").read_text().splitlines()
    dev = (tmp_path / "requirements-dev.txt").read_text().splitlines()
    assert runtime[0].startswith("# ") and dev[:2][1] == "-r requirements.txt"
    assert runtime[1:] == ["app==1.0", "core_lib==1.0", "etils==1.0", "fsspec==1.0", "new-only==1.0", "tiny==1.0"]
    assert dev[2:] == ["einops==1.0", "old-backport==1.0", "pytest==1.0", "test-tool==1.0", "win-only==1.0"]


def test_the_pinned_files_are_split_that_way():
    """The checked-in sets: runtime has no test tools, dev starts from runtime, no package in both."""
    def names(path):
        return {split.requirement_name(line) for line in path.read_text().splitlines()
                if line.strip() and not line.startswith(("#", "-r"))}
    runtime, dev = names(REPO / "requirements.txt"), names(REPO / "requirements-dev.txt")
    assert "-r requirements.txt" in (REPO / "requirements-dev.txt").read_text().splitlines()
    assert not runtime & dev
    assert {"pytest", "scikit-learn", "jsonschema"} <= dev and not {"pytest", "scikit-learn"} & runtime
    assert {"tensorflow", "dm-reverb", "tf-agents"} <= runtime
    assert sys.version_info[:2] == (3, 11)
