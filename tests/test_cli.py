import json
import subprocess
import sys

import pytest

from digitalhuman.batch import parse_seeds, parse_shard, shard_seeds
from digitalhuman.cli import main
from digitalhuman.persona import PersonaError


def run(argv, capsys):
    with pytest.raises(SystemExit) if argv and argv[0] in ("--help",) else _null():
        code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_seed_ranges():
    assert parse_seeds("0-3,10,12-13") == [0, 1, 2, 3, 10, 12, 13]
    assert parse_seeds("5,5,4") == [4, 5]
    for bad in ["5-2", "", "a", "-3", "1-", "1--2", "0-99999999", "１"]:
        with pytest.raises(PersonaError):
            parse_seeds(bad)
    assert parse_shard("1/3") == (1, 3)
    for bad in ["3/3", "a/b", "1", "-1/2", "0/0"]:
        with pytest.raises(PersonaError):
            parse_shard(bad)
    seeds = list(range(10))
    parts = [shard_seeds(seeds, (k, 3)) for k in range(3)]
    assert sorted(sum(parts, [])) == seeds and all(set(a).isdisjoint(b) for a in parts for b in parts if a is not b)


@pytest.mark.parametrize("argv,msg", [
    (["create", "--seed", "-4", "--out", "x"], "non-negative integer"),
    (["create", "--seed", "1", "--gender", "robot", "--out", "x"], "invalid choice"),
    (["create", "--seed", "1", "--age", "abc", "--out", "x"], "number of years"),
    (["create", "--seed", "1", "--age", "500", "--out", "x"], "between 0 and 100"),
    (["create", "--seed", "1", "--say", "   ", "--out", "x"], "text is empty"),
    (["create", "--seed", "1", "--say", "a" * 5000, "--out", "x"], "limit is 2000"),
    (["train", "face", "--out", "x", "--seed", "-1"], "seed 0 to 2147483647"),
    (["train", "face", "--out", "x", "--seed", "2147483648"], "seed 0 to 2147483647"),
    (["train", "voice", "--out", "x", "--epochs", "0"], "positive integer"),
])
def test_argument_errors_are_one_line(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_runtime_errors(tmp_path, tiny_weights_no_voice, capsys):
    w = ["--weights", str(tiny_weights_no_voice)]
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("mine")
    (tmp_path / "empty").mkdir()  # a folder of no models (a missing folder is refused at once: test_cli_edges)
    cases = [
        (w + ["batch", "--seeds", "5-2", "--out", str(tmp_path / "b")], "end is smaller"),
        (w + ["batch", "--seeds", "0-1", "--no-voice", "--out", str(tmp_path / "junk")], "not a previous batch"),
        (w + ["say", "--persona", str(tmp_path / "nope"), "--text", "hi"], "not found"),
        (["--weights", str(tmp_path / "empty"), "create", "--seed", "1", "--out", str(tmp_path / "c")],
         f"no trained fusion model (looked in {tmp_path / 'empty'}/card.json)"),
    ]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "persona.json").write_text("{not json")
    cases.append((w + ["say", "--persona", str(tmp_path / "bad"), "--text", "hi"], "not valid JSON"))
    for argv, msg in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 1, argv
        assert msg in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert (tmp_path / "junk" / "file.txt").read_text() == "mine"  # nothing touched


def test_batch_resume_and_manifest(tmp_path, tiny_weights_no_voice, capsys):
    out = tmp_path / "npcs"
    argv = ["--weights", str(tiny_weights_no_voice), "batch", "--seeds", "0-5", "--no-voice", "--quiet",
            "--out", str(out)]
    assert main(argv) == 0
    first = {p.name: (p / "face.png").read_bytes() for p in out.iterdir() if p.is_dir()}
    manifest = (out / "manifest.jsonl").read_text()
    assert sorted(first, key=int) == [str(s) for s in range(6)]
    assert [json.loads(x)["seed"] for x in manifest.splitlines()] == list(range(6))
    # simulate an interruption: one persona gone, one half-written temp folder left behind
    import shutil

    shutil.rmtree(out / "3")
    (out / ".4.abc.tmp").mkdir()
    (out / ".4.abc.tmp" / "face.png").write_bytes(b"half")
    capsys.readouterr()
    assert main(argv) == 0
    assert "1 made, 5 already there" in capsys.readouterr().out
    assert not (out / ".4.abc.tmp").exists()
    assert (out / "3" / "face.png").read_bytes() == first["3"]
    assert (out / "manifest.jsonl").read_text() == manifest
    # a different request into the same folder is refused
    assert main(argv[:4] + ["0-6"] + argv[5:]) == 1
    assert "different batch" in capsys.readouterr().err


def test_shards_merge_to_the_unsharded_batch(tmp_path, tiny_weights_no_voice):
    w = ["--weights", str(tiny_weights_no_voice)]
    base = ["batch", "--seeds", "0-6", "--no-voice", "--quiet"]
    assert main(w + base + ["--out", str(tmp_path / "all")]) == 0
    assert main(w + base + ["--shard", "0/2", "--out", str(tmp_path / "s0")]) == 0
    assert main(w + base + ["--shard", "1/2", "--out", str(tmp_path / "s1")]) == 0
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0

    def tree(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert tree(tmp_path / "all") == tree(tmp_path / "m")


def test_module_and_help_entry_points():
    r = subprocess.run([sys.executable, "-m", "digitalhuman", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "batch --seeds 0-499" in r.stdout
    r = subprocess.run([sys.executable, "-m", "digitalhuman", "info"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "digitalhuman" in r.stdout
