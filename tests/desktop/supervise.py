#!/usr/bin/env python3
# supervise.py CONSOLE TIMEOUT RUNDIR SHOTDIR QEMU-ARGV...: runs QEMU for desktop-vm.sh.
# Writes the serial console to CONSOLE, each line prefixed with the host's seconds since QEMU
# started ("[  12.34] ..."; OVMF's ANSI escapes removed); serves the guest's screenshot requests
# (virtio-serial port "dt.shot", socket RUNDIR/shot.sock: the guest writes "NAME" or "NAME settle"
# and reads back one line: "ok" (a picture), "ok flat" (the whole screen one colour), "error ...",
# followed by " (not settled)" when "settle" gave up; the picture of the VGA output, QMP screendump
# through RUNDIR/qmp.sock, lands in SHOTDIR/NAME.png; "settle" first waits, at most 30 s, until the
# screen is not one flat colour and is the same twice 0.5 s apart); kills QEMU after TIMEOUT
# seconds. Exit: 0 when QEMU ended by itself, 124 on timeout.
import json, re, socket, subprocess, sys, threading, time

log_path, tmo, xdir, shots, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
t0 = time.monotonic()
log = open(log_path, "w", buffering=1)
def note(s): log.write("[%7.2f] %s\n" % (time.monotonic() - t0, s))
p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

def connect(path):
    for _ in range(200):
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(path); return s
        except OSError: time.sleep(0.05)
    raise RuntimeError("cannot connect to " + path)

def shot_server():
    try:
        q = connect(xdir + "/qmp.sock"); qf = q.makefile("rw")
        def qmp(cmd, **args):
            qf.write(json.dumps({"execute": cmd, "arguments": args}) + "\n"); qf.flush()
            while True:
                r = json.loads(qf.readline())
                if "return" in r or "error" in r: return r
        json.loads(qf.readline()); qmp("qmp_capabilities")
        c = connect(xdir + "/shot.sock"); cf = c.makefile("rw")
        def grab(fmt, path):
            r = qmp("screendump", filename=path, format=fmt)
            return "ok" if "return" in r else "error " + r["error"].get("desc", "?")
        for line in cf:
            words = line.split()
            if not words: continue
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", words[0])
            t = time.monotonic(); how = ""
            if "settle" in words[1:]:
                prev, how = None, " (not settled)"
                while time.monotonic() - t < 30:
                    grab("ppm", xdir + "/probe.ppm")
                    data = open(xdir + "/probe.ppm", "rb").read()
                    px = data[data.index(b"255\n") + 4:]
                    flat = px.count(px[:3]) * 3 == len(px)
                    if not flat and data == prev: how = ""; break
                    prev = data; time.sleep(0.5)
            ans = grab("ppm", xdir + "/probe.ppm")
            if ans == "ok":
                data = open(xdir + "/probe.ppm", "rb").read()
                px = data[data.index(b"255\n") + 4:]
                if px.count(px[:3]) * 3 == len(px): ans = "ok flat"
                png = grab("png", "%s/%s.png" % (shots, name))
                if png != "ok": ans = png
            note("desktop-host: screendump %s: %s%s (%.2fs)" % (name, ans, how, time.monotonic() - t))
            cf.write(ans + how + "\n"); cf.flush()
    except Exception as e:
        if p.poll() is None: note("desktop-host: screenshot service stopped: %r" % e)

threading.Thread(target=shot_server, daemon=True).start()
timer = threading.Timer(tmo, p.kill); timer.start()
for raw in p.stdout:
    line = raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n")
    line = re.sub(r"\x1b\[[0-9;?=]*[A-Za-z]", "", line)
    if line.strip(): note(line)
qrc = p.wait(); timer.cancel()
timed_out = qrc == -9
note("desktop-host: qemu exited %s after %.1fs%s" % (qrc, time.monotonic() - t0, " (TIMEOUT)" if timed_out else ""))
sys.exit(124 if timed_out else 0)
