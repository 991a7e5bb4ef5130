"""The filter as a process sees it: autoload, vspipe, threads, batching, teardown, no Python."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from vs_helpers import ConstColorizer, ConvColorizer, all_frames

import colorvid

vs = pytest.importorskip("vapoursynth")

FUNCTIONS = ["Colorize", "Ensemble", "LRCN", "Larsson", "Zhang"]


def _run(args, cwd: Path, env=None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_namespace_autoloads_in_a_fresh_process(tmp_path):
    code = textwrap.dedent("""
        import json, vapoursynth as vs
        core = vs.core
        ns = getattr(core, "colorvid", None)
        plugin = core.plugins()  # every autoloaded plugin
        info = [p for p in plugin if p.namespace == "colorvid"]
        print(json.dumps({"has": ns is not None,
                          "functions": sorted(f.name for f in info[0].functions()) if info else [],
                          "path": info[0].plugin_path if info else None}))
    """)
    r = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["has"], "core.colorvid is missing: the plugin did not autoload"
    assert got["functions"] == FUNCTIONS
    plugin = Path(got["path"])
    assert plugin.name == "libcolorvid.so" and plugin.parent.name == "colorvid"
    assert plugin.parent.parent == Path(vs.__file__).parent / "plugins"


def _vspipe() -> Path:
    """vspipe ships in the vapoursynth wheel, next to its module."""
    exe = Path(vs.__file__).with_name("vspipe")
    if not exe.is_file():
        pytest.skip(f"no vspipe in the vapoursynth wheel ({exe})")
    return exe


@pytest.mark.slow  # a vspipe process that imports torch: about 5 s
def test_vspipe_runs_lrcn_script(tmp_path):
    """An LRCN script run by vspipe: y4m out, right frame count, luma kept."""
    if "lrcn" not in colorvid.get_host().names("colorizer"):
        pytest.skip("the lrcn colorizer is not registered")
    from test_vs_temporal import _save_random_weights

    weights = _save_random_weights("lrcn", tmp_path / "lrcn.safetensors")
    script = tmp_path / "colorize.vpy"
    script.write_text(textwrap.dedent(f"""
        import vapoursynth as vs
        core = vs.core
        clip = core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=7,
                                  color=[100, 128, 128])
        clip = core.colorvid.LRCN(clip, weights={weights!r}, render_size=32)
        clip.set_output()
    """))
    # vspipe finds Python through a config file; write one for this Python in a private
    # XDG_CONFIG_HOME instead of the user's.
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    r = _run([sys.executable, "-m", "vapoursynth", "config"], cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out.y4m"
    r = _run([str(_vspipe()), str(script), str(out), "-c", "y4m"], cwd=tmp_path, env=env,
             timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    import av

    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]
    assert len(frames) == 7
    assert all(f.shape == (48 * 3 // 2, 64) for f in frames)
    assert all((f[:48] == 100).all() for f in frames)  # Y plane untouched


def test_threads_give_identical_output_and_batches(core, blank, test_colorizers, threads):
    """num_threads 1 and 8: the same bits; with 8 threads, concurrent frames share model calls."""
    clip = blank(vs.RGBS, length=24)
    results, calls = {}, {}
    for n in (1, 8):
        threads(n)
        ConvColorizer.created.clear()
        out = core.colorvid.Colorize(clip, model="vs-conv", batch_size=4)
        results[n] = all_frames(out)
        calls[n] = sum(r().calls for r in ConvColorizer.created if r() is not None)
        del out
    for a, b in zip(results[1], results[8], strict=False):
        for pa, pb in zip(a, b, strict=False):
            np.testing.assert_array_equal(pa, pb)
    assert calls[1] == 24
    assert calls[8] <= 18, f"8 threads made {calls[8]} model calls for 24 frames"


def test_filter_frees_its_model(core, blank, test_colorizers, threads):
    threads(8)
    ConstColorizer.created.clear()
    out = core.colorvid.Colorize(blank(vs.YUV420P8, length=8), model="vs-const")
    all_frames(out)
    assert any(r() is not None for r in ConstColorizer.created)
    del out
    # The last frame reference may be dropped by a worker thread a moment later.
    deadline = time.monotonic() + 10
    while any(r() is not None for r in ConstColorizer.created) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert all(r() is None for r in ConstColorizer.created), "the session outlived its node"


@pytest.mark.slow  # a Python process that imports torch: about 5 s
def test_exit_with_frames_in_flight(tmp_path):
    """Interpreter exit while frames are still being made: no hang, no crash."""
    code = textwrap.dedent("""
        import vapoursynth as vs
        core = vs.core
        core.num_threads = 8
        clip = core.std.BlankClip(format=vs.YUV420P10, width=64, height=48, length=200)
        out = core.colorvid.Colorize(clip, model="grey", batch_size=4)
        for n, f in enumerate(out.frames()):
            if n == 5:
                break
        pending = [out.get_frame_async(n) for n in range(100, 140)]
        print("done", flush=True)
    """)
    r = _run([sys.executable, "-c", code], cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done" in r.stdout


C_HOST = r"""
#include <dlfcn.h>
#include <stdio.h>
#include "VapourSynth4.h"
/* A VapourSynth host without Python: it must get an error from colorvid, not a crash. */
int main(int argc, char **argv) {
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { printf("dlopen: %s\n", dlerror()); return 2; }
    const VSAPI *(*get)(int) = (const VSAPI *(*)(int))dlsym(lib, "getVapourSynthAPI");
    const VSAPI *api = get(VAPOURSYNTH_API_VERSION);
    VSCore *core = api->createCore(0);
    VSPlugin *cv = api->getPluginByNamespace("colorvid", core);
    if (!cv) {
        VSMap *a = api->createMap();
        api->mapSetData(a, "path", argv[2], -1, dtUtf8, maAppend);
        VSMap *r = api->invoke(api->getPluginByNamespace("std", core), "LoadPlugin", a);
        if (api->mapGetError(r)) { printf("LoadPlugin: %s\n", api->mapGetError(r)); return 3; }
        cv = api->getPluginByNamespace("colorvid", core);
    }
    VSMap *a = api->createMap();
    api->mapSetInt(a, "width", 16, maAppend);
    api->mapSetInt(a, "height", 16, maAppend);
    api->mapSetInt(a, "format", pfYUV420P8, maAppend);
    VSMap *r = api->invoke(api->getPluginByNamespace("std", core), "BlankClip", a);
    VSNode *clip = api->mapGetNode(r, "clip", 0, NULL);
    VSMap *b = api->createMap();
    api->mapConsumeNode(b, "clip", clip, maAppend);
    api->mapSetData(b, "model", "grey", -1, dtUtf8, maAppend);
    VSMap *out = api->invoke(cv, "Colorize", b);
    const char *err = api->mapGetError(out);
    printf("%s\n", err ? err : "(no error)");
    api->freeMap(out); api->freeMap(b); api->freeMap(r); api->freeMap(a);
    api->freeCore(core);
    return err ? 0 : 1;
}
"""


def test_host_without_python_gets_an_error(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler to build a Python-free VapourSynth host")
    include = vs.get_include()
    libdir = Path(vs.__file__).parent
    src = tmp_path / "host.c"
    src.write_text(C_HOST)
    exe = tmp_path / "host"
    r = _run([cc, "-o", str(exe), str(src), f"-I{include}", "-ldl"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    plugin = libdir / "plugins" / "colorvid" / "libcolorvid.so"
    r = _run([str(exe), str(libdir / "libvapoursynth.so.4"), str(plugin)], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("colorvid.Colorize: this process has no Python interpreter"), (
        r.stdout)
