"""A/B: alternate copies of src/ (via PYTHONPATH) round by round; median CPU (user+sys) of fresh processes.

Usage: python bench/pipeline/ab_trees.py N NAME=SRC_DIR [NAME=SRC_DIR ...] -- LOOPML ARGS...
e.g.   python bench/pipeline/ab_trees.py 7 before=/tmp/before/src after=src -- run quickstart.yaml --json
Runs in --dir (env AB_DIR, default /tmp/rr_me: a folder set up by bench_cli_rerun.py). Alternating
the trees in one loop keeps a busy machine's drift out of the comparison.
"""
import json, os, resource, statistics, subprocess, sys
split = sys.argv.index("--")
n = int(sys.argv[1])
trees = dict(a.split("=", 1) for a in sys.argv[2:split])
trees = {k: os.path.abspath(v) for k, v in trees.items()}
cmd = sys.argv[split + 1:]
L = os.path.join(os.path.dirname(sys.executable), "loopml")
CWD = os.environ.get("AB_DIR", "/tmp/rr_me")
env0 = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
env0["PYTHONPYCACHEPREFIX"] = "/tmp/loopml-bench-pyc"
def t(c, env):
    b = resource.getrusage(resource.RUSAGE_CHILDREN); out = subprocess.run(c, cwd=CWD, env=env, capture_output=True, check=True).stdout
    a = resource.getrusage(resource.RUSAGE_CHILDREN); return a.ru_utime-b.ru_utime+a.ru_stime-b.ru_stime, out
res = {k: [] for k in ["python", *trees]}
for name, p in trees.items(): t([L, *cmd], {**env0, "PYTHONPATH": p})  # warm pyc
for _ in range(n):
    res["python"].append(t([sys.executable, "-c", "pass"], env0)[0])
    for name, p in trees.items():
        c, out = t([L, *cmd], {**env0, "PYTHONPATH": p}); res[name].append(c)
        if cmd[0] == "run": assert [s["status"] for s in json.loads(out)["steps"]] == ["cached"]*7
py = statistics.median(res["python"])
print(" ".join(cmd), "| python", round(py, 3), "|", " ".join(f"{k}: {statistics.median(v):.3f} (+{statistics.median(v)-py:.3f})" for k, v in res.items() if k != "python"), "| load", os.getloadavg()[0])
