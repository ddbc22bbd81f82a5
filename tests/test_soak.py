"""30 back-to-back smoke runs in one multirun process: memory and open files stay flat."""

import json

import pytest

PROBE = '''
import json, os, resource, sys
from pathlib import Path
from lightning.pytorch.callbacks import Callback

class Resources(Callback):
    """Writes this process's resident memory and open files at the end of each fit."""
    def __init__(self, path):
        self.path = Path(path)
    def on_fit_end(self, trainer, pl_module):
        pages = int(open("/proc/self/statm").read().split()[1])
        self.path.write_text(json.dumps({
            "rss_mb": pages * os.sysconf("SC_PAGE_SIZE") / 2**20,
            "open_files": len(os.listdir("/proc/self/fd")),
            "python_blocks": sys.getallocatedblocks(),
        }))
'''


@pytest.mark.slow
def test_thirty_smoke_runs_do_not_leak(dltrain):
    (dltrain.cwd / "soak_probe.py").write_text(PROBE)
    result = dltrain("fit", "-m", "trainer=smoke", "seed=range(0,30)", "callbacks.progress_bar=null",
                     "+callbacks.resources._target_=soak_probe.Resources",
                     "+callbacks.resources.path=${paths.run_dir}/resources.json", "hydra.sweep.dir=soak")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    probes = [
        json.loads((dltrain.cwd / "soak" / str(i) / "resources.json").read_text())
        for i in range(30)
    ]
    rss = [p["rss_mb"] for p in probes]
    files = [p["open_files"] for p in probes]
    # after a few runs of warm-up, 25 more runs may not add more than 15 MB or any file handles
    print("rss_mb", [round(v) for v in rss], "open_files", files)
    assert rss[-1] - rss[4] < 15, rss
    assert files[-1] <= files[4] + 2, files
    # Python objects: about 3,000 blocks a job stay (Hydra keeps each job's config and
    # result); a job's model, trainer and data left behind add 7,000 more (they did while
    # the runner froze the garbage that Hydra released only at the next job).
    blocks = [p["python_blocks"] for p in probes]
    assert (blocks[-1] - blocks[4]) / 25 < 6000, blocks
