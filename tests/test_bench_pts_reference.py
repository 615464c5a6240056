"""bench/pts_vs_reference.py without a codelion/pts checkout: one clear line, exit 0, no model loaded."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "pts_vs_reference.py"


def test_absent_reference_says_so_and_exits_0(tmp_path):
    missing = tmp_path / "no-such-checkout"
    done = subprocess.run([sys.executable, str(SCRIPT), "--reference", str(missing)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == f"codelion/pts reference not found at {missing.resolve()} (no pts/core.py there); nothing run"


def test_absent_reference_loads_no_model(tmp_path):
    # In process: main() returns 0 before torch (and so any model) is imported.
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('bench_pts_vs_reference', {str(SCRIPT)!r})\n"
            "module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            f"rc = module.main(['--reference', {str(tmp_path / 'missing')!r}])\n"
            "print('rc', rc, 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "rc 0 False"


def test_no_reference_given():
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "codelion/pts reference: no checkout given (--reference PATH); nothing run"


def test_unimportable_reference_says_so_and_exits_0(tmp_path):
    (tmp_path / "pts").mkdir()
    (tmp_path / "pts" / "core.py").write_text("import a_module_no_checkout_provides\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--reference", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"codelion/pts reference at {tmp_path.resolve()} is not importable (ModuleNotFoundError")
    assert lines[0].endswith("; nothing run")
