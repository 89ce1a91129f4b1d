#!/usr/bin/python3
"""Live diagnosis on real jobs: distbarrier-status and the flight recorder (issue 15).

    check_status.py CASE STATUS_PROGRAM DISTBARRIER_STATUS DISTBARRIER_RUN

Every wait polls for a state with a deadline (the program announces its pids and the barriers
it passed on stdout); nothing sleeps to synchronize. Cases:
  stopped_rank_processes  4 processes, rank 2 SIGSTOPped: the status names it and the barrier it
                          blocks within 1 s of the stop, every call answers within 1 s; table,
                          --json, discovery without --pid, --watch, --dump and --analyze
  stalled_rank_threads    4 thread ranks, rank 3 stops launching: the others are parked in its
                          next barrier, waiting for it
  other_user_refused      a client of another uid gets a refusal, not the state; a socket of
                          another uid under our name is not believed (needs root, else skipped)
  timeout_dumps           rank 1 stalls, the others time out: their dumps name rank 1 and the barrier
  peer_death_dumps        rank 2 dies: the others' dumps name it, dead, and the barrier
  hang_warning_dump       a barrier without timeout waits past DISTBARRIER_WARN_S: the dump names the rank
  abort_dump              the process aborts: its dump is valid JSON holding the barriers it passed
  segv_dump               the same for a process killed by SIGSEGV
  status_off              DISTBARRIER_STATUS=0: the process serves no status (the tool does not
                          find it), while its barriers run
"""
import glob
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77  # ctest's SKIP_RETURN_CODE
DEADLINE_S = 60  # for the job to reach a state; a hang fails here, not at ctest's timeout
ANSWER_S = 1.0  # the bound on one status call


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


class Job:
    """A program whose stdout lines are read in the background."""

    def __init__(self, command, env=None):
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=env, start_new_session=True)
        self.lines = queue.Queue()
        self.seen = []
        self.ended = threading.Event()  # stdout reached EOF: every line is in self.lines
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.ended.set()

    def wait_for(self, predicate, what):
        """Lines until `predicate` holds for the ones seen so far."""
        deadline = time.monotonic() + DEADLINE_S
        while not predicate(self.seen):
            left = deadline - time.monotonic()
            if left <= 0 or self.ended.is_set() and self.lines.empty():
                fail(f"{what}: not seen; output {self.seen}; stderr {self.stderr_tail()}")
            try:
                self.seen.append(self.lines.get(timeout=min(left, 1.0)))
            except queue.Empty:
                pass
        return self.seen

    def pids(self, count):
        lines = self.wait_for(lambda seen: sum(" pid " in line for line in seen) >= count, f"{count} pid lines")
        pids = {}
        for line in lines:
            words = line.split()
            if len(words) == 4 and words[0] == "rank" and words[2] == "pid":
                pids[int(words[1])] = int(words[3])
            elif len(words) == 3 and words[0] == "threads" and words[1] == "pid":
                pids["process"] = int(words[2])
        return pids

    def stderr_tail(self):
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read()[-3000:]

    def finish(self, timeout=DEADLINE_S):
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            fail(f"the job did not end within {timeout} s; output {self.seen}")
        return self.process.returncode

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def status(tool, *args, check_time=True):
    """Runs distbarrier-status; returns (exit code, stdout, stderr). Each call must answer in time."""
    started = time.monotonic()
    result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - started
    if check_time and took > ANSWER_S:
        fail(f"distbarrier-status {' '.join(args)} took {took:.3f} s (bound {ANSWER_S} s)")
    return result.returncode, result.stdout, result.stderr


def pid_args(pids):
    return [arg for pid in pids for arg in ("--pid", str(pid))]


def poll_status(tool, pids, predicate, what, deadline_s=DEADLINE_S):
    """Polls --json until predicate(communicator) holds for some communicator; returns it and the time taken."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < deadline_s:
        code, out, err = status(tool, "--json", *pid_args(pids))
        if code != 0:
            fail(f"distbarrier-status exited {code}: {out} {err}")
        last = json.loads(out)  # fails the test if not JSON
        for communicator in last["communicators"]:
            if predicate(communicator):
                return communicator, time.monotonic() - started
    fail(f"{what}: not shown within {deadline_s} s; last answer {json.dumps(last)}")


def ranks_of(communicator):
    return {row["rank"]: row for row in communicator["ranks"]}


def analyze(tool, files):
    code, out, err = status(tool, "--analyze", *files, "--json", check_time=False)
    if code != 0:
        fail(f"--analyze exited {code}: {err}")
    analysis = json.loads(out)
    if len(analysis["communicators"]) != 1:
        fail(f"expected one communicator in {files}: {out}")
    code, text, err = status(tool, "--analyze", *files, check_time=False)
    return analysis["communicators"][0], text


def flight_files(work):
    files = sorted(f for f in glob.glob(os.path.join(work, "flight.*.json")))
    for path in files:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)  # every dump is valid JSON
        if document["format"] != "distbarrier-flight-recorder":
            fail(f"{path}: format {document['format']}")
    return files


def stopped_rank_processes(program, tool, launcher, work):
    env = dict(os.environ, DISTBARRIER_FLIGHT_RECORDER=os.path.join(work, "flight.%p.json"))
    job = Job([launcher, "-n", "4", "--kill-grace", "1", program, "processes", "loop"], env)
    try:
        pids = job.pids(4)
        stopped = 2
        os.kill(pids[stopped], signal.SIGSTOP)
        stop_time = time.monotonic()

        def stuck_on_rank_2(communicator):
            rows = ranks_of(communicator)
            if sorted(rows) != [0, 1, 2, 3] or rows[stopped]["pid"] != pids[stopped]:
                return False
            blocked = rows[stopped]["last_seq"] + 1
            others_wait = all(rows[r]["state"] == "waiting" and rows[r]["barrier"] == blocked and
                              rows[r]["missing"] == [stopped] for r in (0, 1, 3))
            return others_wait and rows[stopped]["state"] == "stopped" and rows[stopped].get("blocks") == blocked

        communicator, _ = poll_status(tool, pids.values(), stuck_on_rank_2, "rank 2 stopped, the others waiting for it")
        shown_after = time.monotonic() - stop_time
        if shown_after > ANSWER_S:
            fail(f"the stopped rank was shown {shown_after:.3f} s after SIGSTOP (bound {ANSWER_S} s)")
        blocked = ranks_of(communicator)[stopped]["last_seq"] + 1
        name = communicator["name"]

        code, table, _ = status(tool, *pid_args(pids.values()))
        for expected in (f"waiting in barrier #{blocked}", "missing rank 2",
                         f"stopped (SIGSTOP); barrier #{blocked} waits for it", name):
            if expected not in table:
                fail(f"the table lacks '{expected}':\n{table}")
        # Discovery: without --pid the job is found among this user's processes.
        code, out, _ = status(tool, "--json")
        if name not in [c["name"] for c in json.loads(out)["communicators"]]:
            fail(f"discovery did not find {name}: {out}")
        # --watch refreshes until interrupted: two tables, then stop it.
        watch = Job([tool, "--watch", "0.1", *pid_args(pids.values())])
        watch.wait_for(lambda seen: sum(line.startswith("communicator ") for line in seen) >= 2, "two --watch tables")
        watch.kill()

        # --dump: the running processes write their recorders; the stopped one is named.
        code, out, _ = status(tool, "--dump", *pid_args(pids.values()))
        if out.count("flight recorder written to") != 3 or f"pid {pids[stopped]}: stopped (SIGSTOP)" not in out:
            fail(f"--dump: {out}")
        files = flight_files(work)
        if len(files) != 3:
            fail(f"--dump left {files}")
        result, text = analyze(tool, files)
        if result["first_incomplete"] != blocked or result["waited_for"] != [stopped]:
            fail(f"--analyze of the dumps: {json.dumps(result)}")
        if f"barrier #{blocked} did not complete: it waited for rank 2" not in text:
            fail(f"--analyze text:\n{text}")
        print(table)
        print(text)
    finally:
        job.kill()  # the launcher's process group, the stopped rank included (SIGKILL ends it stopped)


def stalled_rank_threads(program, tool, launcher, work):
    job = Job([program, "threads", "4", "stall", "3", "50"])
    try:
        pid = job.pids(1)["process"]
        job.wait_for(lambda seen: "rank 3 passed 50" in seen, "rank 3 passing barrier 50")

        def parked_for_rank_3(communicator):
            rows = ranks_of(communicator)
            return (communicator["threads"] and sorted(rows) == [0, 1, 2, 3] and
                    all(rows[r]["state"] == "parked" and rows[r]["barrier"] == 51 and rows[r]["missing"] == [3]
                        for r in (0, 1, 2)) and
                    rows[3]["state"] == "running" and rows[3]["last_seq"] == 50 and rows[3].get("blocks") == 51)

        poll_status(tool, [pid], parked_for_rank_3, "ranks 0-2 parked in barrier 51 waiting for rank 3")
        code, table, _ = status(tool, "--pid", str(pid))
        if "parked in barrier #51" not in table or "missing rank 3" not in table:
            fail(f"table:\n{table}")
        # --watch without a period: the default (1 s); its first table is enough here.
        watch = Job([tool, "--watch", "--pid", str(pid)])
        watch.wait_for(lambda seen: any("parked in barrier #51" in line for line in seen), "a --watch table")
        watch.kill()
        print(table)
    finally:
        job.kill()


def other_user_refused(program, tool, launcher, work):
    if os.geteuid() != 0:
        print("skipped: needs root to run a client as another user")
        sys.exit(SKIP)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    job = Job([program, "threads", "2", "stall", "1", "5"])
    impostor = None
    try:
        pid = job.pids(1)["process"]
        job.wait_for(lambda seen: "rank 1 passed 5" in seen, "rank 1 passing barrier 5")
        # A client of another uid that finds the socket is refused by the server.
        client = ("import socket,sys\n"
                  "s=socket.socket(socket.AF_UNIX)\n"
                  f"s.connect('\\0distbarrier-status.{os.geteuid()}.{pid}')\n"
                  "s.sendall(b'state\\n')\n"
                  "data=b''\n"
                  "while True:\n"
                  "    chunk=s.recv(65536)\n"
                  "    if not chunk: break\n"
                  "    data+=chunk\n"
                  "sys.stdout.write(data.decode())\n")
        result = subprocess.run(nobody + ["/usr/bin/python3", "-c", client], capture_output=True, text=True,
                                timeout=30)
        try:
            reply = json.loads(result.stdout)
        except json.JSONDecodeError:
            fail(f"another user's client: {result.stdout!r} {result.stderr}")
        if "refused" not in reply.get("error", "") or "groups" in reply:
            fail(f"another user's client got {result.stdout} {result.stderr}")
        # The tool run by another user does not see this user's job at all.
        result = subprocess.run(nobody + [tool, "--json"], capture_output=True, text=True, timeout=30)
        if any(str(pid) in json.dumps(c) for c in json.loads(result.stdout)["communicators"]):
            fail(f"another user's distbarrier-status listed the job: {result.stdout}")
        # A socket of another uid under our name is not believed (abstract names have no owner).
        squatter = ("import os,socket,sys,time\n"
                    "s=socket.socket(socket.AF_UNIX)\n"
                    f"s.bind('\\0distbarrier-status.{os.geteuid()}.%d' % os.getpid())\n"
                    "s.listen(4)\n"
                    "print(os.getpid(), flush=True)\n"
                    "sys.stdin.read()\n")
        impostor = subprocess.Popen(nobody + ["/usr/bin/python3", "-c", squatter], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        impostor_pid = int(impostor.stdout.readline())
        code, out, _ = status(tool, "--pid", str(impostor_pid), "--json")
        processes = json.loads(out)["processes"]
        if not processes or "belongs to uid 65534" not in processes[0].get("problem", ""):
            fail(f"a socket of uid 65534 was believed: {out}")
        print("refused:", reply["error"])
    finally:
        if impostor is not None:
            impostor.kill()
            impostor.wait()
        job.kill()


def timeout_dumps(program, tool, launcher, work):
    env = dict(os.environ, DISTBARRIER_FLIGHT_RECORDER=os.path.join(work, "flight.%p.json"),
               DISTBARRIER_TIMEOUT_MS="400")
    job = Job([launcher, "-n", "4", "--kill-grace", "10", program, "processes", "stall", "1", "30"], env)
    if job.finish() == 0:
        fail("the job with a stalled rank exited 0")
    files = flight_files(work)
    if not files:
        fail(f"no flight recorder files; stderr {job.stderr_tail()}")
    result, text = analyze(tool, files)
    if result["passed_all"] != 30 or result["first_incomplete"] != 31 or result["waited_for"] != [1]:
        fail(f"analysis: {json.dumps(result)}")
    # The first rank to time out exits; the launcher then ends rank 1, so a rank whose timeout
    # has not come yet may see rank 1 die instead. Either way it noted barrier 31 and rank 1.
    notes = [row["unfinished"] for row in result["ranks"] if "unfinished" in row]
    if (not any(note["outcome"] == "timed out" for note in notes) or
            any(note["outcome"] not in ("timed out", "peer died") or note["missing"] != [1] or note["seq"] != 31
                for note in notes)):
        fail(f"the timed-out ranks' notes: {notes}")
    if "barrier #31 did not complete: it waited for rank 1" not in text or "timed out after" not in text:
        fail(f"analysis text:\n{text}")
    print(text)


def peer_death_dumps(program, tool, launcher, work):
    env = dict(os.environ, DISTBARRIER_FLIGHT_RECORDER=os.path.join(work, "flight.%p.json"))
    job = Job([launcher, "-n", "4", "--kill-grace", "10", program, "processes", "die", "2", "30"], env)
    if job.finish() == 0:
        fail("the job whose rank died exited 0")
    files = flight_files(work)
    if not files:
        fail(f"no flight recorder files; stderr {job.stderr_tail()}")
    result, text = analyze(tool, files)
    if result["passed_all"] != 30 or result["first_incomplete"] != 31 or result["waited_for"] != [2]:
        fail(f"analysis: {json.dumps(result)}")
    rows = {row["rank"]: row for row in result["ranks"]}
    if not rows[2]["dead"] or rows[2]["dump"] is not None:
        fail(f"rank 2 should be dead and without a dump: {rows[2]}")
    if not any(row.get("unfinished", {}).get("outcome") == "peer died" for row in rows.values()):
        fail(f"no rank noted the peer's death: {rows}")
    if "barrier #31 did not complete: it waited for rank 2" not in text or "dead (its process exited)" not in text:
        fail(f"analysis text:\n{text}")
    print(text)


def hang_warning_dump(program, tool, launcher, work):
    path = os.path.join(work, "flight.%p.json")
    env = dict(os.environ, DISTBARRIER_FLIGHT_RECORDER=path, DISTBARRIER_WARN_S="1")
    job = Job([program, "threads", "2", "stall", "1", "5"], env)
    try:
        pid = job.pids(1)["process"]
        dump = path.replace("%p", str(pid))
        deadline = time.monotonic() + DEADLINE_S
        while not os.path.exists(dump):  # the hang warning fires after 1 s and writes the file
            if time.monotonic() > deadline or job.process.poll() is not None:
                fail(f"no dump at the hang warning; stderr {job.stderr_tail()}")
            time.sleep(0.05)  # polling for the file, with a deadline: not synchronization by time
        result, text = analyze(tool, [dump])
        note = {row["rank"]: row for row in result["ranks"]}[0].get("unfinished", {})
        if result["first_incomplete"] != 6 or result["waited_for"] != [1] or note.get("outcome") != "hang warning":
            fail(f"analysis of the hang warning's dump: {json.dumps(result)}")
        print(text)
    finally:
        job.kill()


def fatal_signal_dump(program, work, mode, number, reason):
    path = os.path.join(work, "flight.%p.json")
    job = Job([program, "threads", "4", mode, "20"], dict(os.environ, DISTBARRIER_FLIGHT_RECORDER=path))
    pid = job.pids(1)["process"]
    code = job.finish()
    # Killed by the signal. Under a sanitizer its own handler, chained after ours, reports a
    # SIGSEGV and ends the process its way (abort or an exit code, by its options); what must
    # not happen is the process going on past the signal (status_program exits 3 then).
    linked = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    sanitized = any(runtime in linked for runtime in ("libasan", "libtsan"))
    ended_by_sanitizer = sanitized and number == signal.SIGSEGV and code not in (0, 3)
    if code != -number and not ended_by_sanitizer:
        fail(f"the program exited {code}, expected signal {number}")
    with open(path.replace("%p", str(pid)), encoding="utf-8") as handle:
        document = json.load(handle)  # valid JSON although the process died of a signal
    if document["reason"] != reason:
        fail(f"reason {document['reason']}, expected {reason}")
    group = document["groups"][0]
    seqs = [barrier["seq"] for barrier in group["barriers"]]
    if group["released_seq"] != 20 or seqs != list(range(1, 21)):
        fail(f"the dump holds released {group['released_seq']}, barriers {seqs}")
    if [rank["passed_seq"] for rank in group["ranks"]] != [20] * 4:
        fail(f"ranks: {group['ranks']}")
    leftovers = [f for f in os.listdir(work) if ".tmp." in f]
    if leftovers:
        fail(f"temporary files left: {leftovers}")
    print(f"{mode} dump: {len(seqs)} barriers, reason {document['reason']}")


def abort_dump(program, tool, launcher, work):
    fatal_signal_dump(program, work, "abort", signal.SIGABRT, "abort (SIGABRT)")


def segv_dump(program, tool, launcher, work):
    fatal_signal_dump(program, work, "segv", signal.SIGSEGV, "fatal signal (SIGSEGV)")


def status_off(program, tool, launcher, work):
    for value, served in (("0", False), ("1", True)):
        job = Job([program, "threads", "2", "stall", "1", "5"], dict(os.environ, DISTBARRIER_STATUS=value))
        try:
            pid = job.pids(1)["process"]
            job.wait_for(lambda seen: "rank 1 passed 5" in seen, "rank 1 passing barrier 5")
            code, out, err = status(tool, "--json", "--pid", str(pid))
            found = code == 0 and any(row["pid"] == pid for communicator in json.loads(out)["communicators"]
                                      for row in communicator["ranks"])
            if found != served:
                fail(f"DISTBARRIER_STATUS={value}: the process was {'' if found else 'not '}found: {code} {out} {err}")
            print(f"DISTBARRIER_STATUS={value}: {'served' if found else 'not served'} ({err.strip()})")
        finally:
            job.kill()


def main():
    case, program, tool, launcher = sys.argv[1:5]
    with tempfile.TemporaryDirectory() as work:
        globals()[case](program, tool, launcher, work)
    print("PASS", case)


if __name__ == "__main__":
    main()
