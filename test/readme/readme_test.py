#!/usr/bin/env python3
"""Every example in README.md works as printed (issue 22).

The README's code blocks are run top to bottom, as a newcomer would type
them, in a scratch copy of the repository's layout (build/annals, demo/,
../shared): each `$ ` line is a command and the lines under it are what it
must print. Servers (`make run`, `make demo`, `build/annals serve`,
`build/annals witness`) are started in the background the way the Makefile
starts them and replace the one on the same data directory, as the README
says they do; the test waits for their `ready:` (or `url:`) line and
requires the lines printed under them among what they print.

What a printed line may leave open, and nothing else:
- `...` stands for any text within a line; a line that is only `...` for
  any number of lines;
- a verifier key printed by one command (`NAME+hash+key`) is the one this
  run made: its first appearance binds the printed key to the real one, and
  every later command and output uses the real one (so a key printed twice
  must be the same key);
- the width of a table's columns (runs of spaces count as one, so that a
  column shortened with `...` still lines up);
- durations (`in 0.001s`) and the ports of 127.0.0.1:7070, :7071, :7072
  and :8000, which are moved to free ports so that the test never depends
  on, or disturbs, a server of the person running it.
Read-only commands are tried again for up to 15 s until they print what is
printed (an answer may wait for asynchronous ingest such as `nc`).

A block preceded by `<!-- readme-test: skip REASON -->` is not run; each
such block is listed with its reason in the test's output, and a block
that needs a cluster, a cloud account or another service must be marked so
(the test fails on a command it cannot run rather than skipping it).

Environment: ANNALS_BINARY, ANNALS_SOURCE_DIR, ANNALS_CORPUS_DIR.
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ANNALS = os.environ["ANNALS_BINARY"]
SOURCE = os.environ["ANNALS_SOURCE_DIR"]
SHARED = os.path.dirname(os.path.abspath(os.environ["ANNALS_CORPUS_DIR"]))

KEY_RE = r"\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*"
README_KEY = re.compile(r"([A-Za-z0-9._/-]+)(\+[0-9a-f]{8}\+[A-Za-z0-9+/]{20,}=*)")
DURATION = re.compile(r"\b\d+\.\d+s\b")
READ_ONLY = {"search", "verify", "whois", "history", "state", "proof", "watch", "key", "audit"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Block:
    def __init__(self, line, skip):
        self.line, self.skip, self.steps = line, skip, []  # steps: (command, [expected lines])


def readme_blocks(text):
    """The README's fenced blocks that hold `$ ` commands, each with its
    commands, their printed output and a skip reason if marked."""
    blocks, lines, i, skip = [], text.splitlines(), 0, None
    while i < len(lines):
        m = re.match(r"\s*<!-- readme-test: skip (.*) -->", lines[i])
        if m:
            skip = m.group(1)
        if lines[i].strip() == "```":
            start, body, i = i + 1, [], i + 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            block = Block(start, skip)
            skip = None
            j = 0
            while j < len(body):
                if body[j].startswith("$ "):
                    cmd = body[j][2:]
                    while cmd.endswith("\\"):
                        j += 1
                        cmd = cmd[:-1] + " " + body[j].strip()
                    out, j = [], j + 1
                    while j < len(body) and not body[j].startswith("$ "):
                        out.append(body[j])
                        j += 1
                    while out and not out[-1].strip():
                        out.pop()
                    block.steps.append((cmd, out))
                else:
                    j += 1
            if block.steps:
                blocks.append(block)
            elif block.skip:
                raise AssertionError(f"README.md:{start}: a skip mark on a block with no command")
        i += 1
    return blocks


class Server:
    def __init__(self, argv, cwd, env):
        self.argv = argv
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines, self.lock = [], threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if any(l.startswith(prefix) for l in self.lines):
                    return list(self.lines)
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"{shlex.join(self.argv)} exited {self.proc.returncode}:\n" +
                                     "\n".join(self.lines))
            time.sleep(0.05)
        raise AssertionError(f"{shlex.join(self.argv)} printed no '{prefix}' in {timeout}s:\n" + "\n".join(self.lines))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ReadmeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="annals-readme-")
        # The repository's layout as the README's paths expect it.
        self.cwd = os.path.join(self.tmp, "annals")
        os.makedirs(os.path.join(self.cwd, "build"))
        os.symlink(ANNALS, os.path.join(self.cwd, "build", "annals"))
        os.symlink(os.path.join(SOURCE, "demo"), os.path.join(self.cwd, "demo"))
        os.symlink(SHARED, os.path.join(self.tmp, "shared"))
        self.env = dict(os.environ, HOME=self.tmp)
        for name in ("ANNALS_URL", "ANNALS_TOKEN", "ANNALS_CONFIG"):
            self.env.pop(name, None)
        self.ports = {p: free_port() for p in ("7070", "7071", "7072", "8000")}
        self.keys = {}  # printed key -> this run's key
        self.servers = {}  # data directory -> Server
        self.shell_vars = []  # `NAME=value` lines run so far
        with open(os.path.join(SOURCE, "Makefile")) as f:
            self.makefile = f.read()

    def tearDown(self):
        for s in self.servers.values():
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def bind(self, text):
        for port, real in self.ports.items():
            text = text.replace("127.0.0.1:" + port, f"127.0.0.1:{real}")
            text = text.replace("127.0.0.1 " + port, f"127.0.0.1 {real}")  # nc HOST PORT
        for printed, real in self.keys.items():
            text = text.replace(printed, real)
        return text

    def pattern(self, expected):
        """A regex for the printed lines, with a group per unbound key."""
        keys, parts = [], []
        for line in expected:
            if line.strip() == "...":
                parts.append(r"(?:.*\n)*?")
                continue
            out, pos = "", 0
            for m in README_KEY.finditer(line):
                if m.group(0) in self.keys.values():
                    continue  # bound already: must be printed as is
                out += self.literal(line[pos:m.start()])
                out += re.escape(m.group(1)) + "(" + KEY_RE + ")"
                keys.append(m.group(0))
                pos = m.end()
            parts.append(out + self.literal(line[pos:]) + r"\n")
        return "".join(parts), keys

    @staticmethod
    def literal(text):
        out, pos = "", 0
        for m in re.finditer(r"\.\.\.|" + DURATION.pattern, text):
            out += re.escape(text[pos:m.start()]) + (".*" if m.group(0) == "..." else r"[0-9.]+s")
            pos = m.end()
        return out + re.escape(text[pos:])

    @staticmethod
    def squeeze(line):
        return re.sub(r"\s+", " ", line).strip()

    def matches(self, expected, actual):
        regex, keys = self.pattern([self.squeeze(self.bind(l)) for l in expected])
        actual = "".join(self.squeeze(l) + "\n" for l in actual.splitlines())
        m = re.fullmatch(regex, actual)
        if m:
            for printed, group in zip(keys, m.groups()):
                real = printed.split("+", 1)[0] + group
                self.keys.setdefault(printed, real)
        return m is not None

    def server_argv(self, cmd):
        """The argv of a command that starts a server, else None."""
        words = shlex.split(self.bind(cmd))
        if words[:2] in (["make", "run"], ["make", "demo"]):
            target = words[1]
            args = []
            for w in words[2:]:
                self.assertTrue(w.startswith("ARGS="), f"{cmd}: only ARGS= is understood")
                args += shlex.split(w[5:])
            data = "annals-demo" if target == "demo" else "annals-data"
            # What the Makefile runs (checked, so that a change there shows).
            self.assertIn("DATA ?= annals-data", self.makefile)
            self.assertIn("DEMO_DATA ?= annals-demo", self.makefile)
            recipe = ("$(BUILD)/annals serve --data $(DEMO_DATA) --listen $(LISTEN) --demo $(ARGS)" if target == "demo"
                      else "$(BUILD)/annals serve --data $(DATA) --listen $(LISTEN) $(ARGS)")
            self.assertIn(recipe, self.makefile)
            argv = ["build/annals", "serve", "--data", data, "--listen", f"127.0.0.1:{self.ports['7070']}"]
            return argv + (["--demo"] if target == "demo" else []) + args
        if words[0] == "build/annals" and len(words) > 1 and words[1] in ("serve", "witness"):
            return ["bash", "-c", self.bind(cmd)] if "$(" in cmd else words
        return None

    def start(self, cmd, expected, where):
        argv = self.server_argv(cmd)
        words = " ".join(argv)
        data = re.search(r"--data (\S+)", words).group(1)
        listen = re.search(r"--listen (\S+)", words)
        listen = listen.group(1) if listen else "127.0.0.1:7070"
        # One server per data directory, and per address: the README says
        # which one a command replaces (Ctrl-C first).
        for key, old in list(self.servers.items()):
            if key == data or old.listen == listen:
                self.servers.pop(key).stop()
        server = Server(argv, self.cwd, self.env)
        server.listen = listen
        self.servers[data] = server
        server.wait_for("ready:" if re.search(r"annals serve\b", words) else "url:")
        # stdout and stderr reach the pipe in no fixed order: wait a little
        # for each printed line.
        for line in expected:
            if line.strip() == "...":
                continue
            regex, _ = self.pattern([self.squeeze(self.bind(line))])
            deadline = time.time() + 20
            while True:
                with server.lock:
                    lines = list(server.lines)
                found = [l for l in lines if re.fullmatch(regex, self.squeeze(l) + "\n")]
                if found or time.time() > deadline:
                    break
                time.sleep(0.05)
            self.assertTrue(found, f"{where}: `{cmd}` did not print\n  {line}\nit printed:\n" + "\n".join(lines))
            self.matches([line], found[0])

    def run_command(self, cmd, expected, where):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S+", cmd):
            self.shell_vars.append(cmd)  # kept for the commands after it, as a shell would
        bound = "".join(v + "; " for v in self.shell_vars) + self.bind(cmd)
        words = shlex.split(self.bind(cmd).split("|")[0])
        read_only = (words[0] == "build/annals" and len(words) > 1 and words[1] in READ_ONLY and
                     "--export" not in words and "--state" not in words)
        deadline = time.time() + (15 if read_only else 0)
        while True:
            # What a terminal shows: both streams.
            try:
                # Lines in the order a terminal shows them (stdbuf: line
                # buffered, not block buffered into a pipe).
                r = subprocess.run(["stdbuf", "-oL", "-eL", "bash", "-c", bound], cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=60)
            except subprocess.TimeoutExpired as e:
                self.fail(f"{where}: `{cmd}` still running after 60 s; it printed\n{e.output}")
            ok = r.returncode == 0 and self.matches(expected, r.stdout)
            if ok or time.time() >= deadline:
                break
            time.sleep(0.3)
        self.assertEqual(r.returncode, 0, f"{where}: `{cmd}` exited {r.returncode}:\n{r.stdout}")
        self.assertTrue(ok, f"{where}: `{cmd}` printed\n{r.stdout}\ninstead of\n" + "\n".join(expected))

    def test_every_readme_example(self):
        with open(os.path.join(SOURCE, "README.md")) as f:
            blocks = readme_blocks(f.read())
        ran, skipped, failures = 0, [], []
        for block in blocks:
            if block.skip:
                skipped.append(f"README.md:{block.line}: {block.skip}")
                continue
            for cmd, expected in block.steps:
                where = f"README.md:{block.line}"
                try:
                    if self.server_argv(cmd):
                        self.start(cmd, expected, where)
                    else:
                        self.run_command(cmd, expected, where)
                except AssertionError as e:
                    # ANNALS_README_ALL=1: every difference at once, for
                    # whoever edits the README (the test still fails).
                    if not os.environ.get("ANNALS_README_ALL"):
                        raise
                    failures.append(str(e))
                ran += 1
        print(f"\n{ran} README commands ran and printed what the README prints; not run here:", file=sys.stderr)
        for s in skipped:
            print("  " + s, file=sys.stderr)
        self.assertFalse(failures, "\n\n".join(failures))
        self.assertGreater(ran, 30)

    def test_the_parser_and_matcher(self):
        # The checks above must be able to fail.
        blocks = readme_blocks("<!-- readme-test: skip needs a cluster -->\n```\n$ a \\\n  b\nx\n...\n$ c\n```\n")
        self.assertEqual(blocks[0].skip, "needs a cluster")
        self.assertEqual(blocks[0].steps, [("a  b", ["x", "..."]), ("c", [])])
        self.assertTrue(self.matches(["size 9 in 0.01s"], "size 9 in 12.5s\n"))
        self.assertFalse(self.matches(["size 9 in 0.01s"], "size 10 in 0.01s\n"))
        self.assertTrue(self.matches(["a", "...", "z"], "a\nb\nc\nz\n"))
        self.assertFalse(self.matches(["a", "z"], "a\nb\nz\n"))
        self.assertTrue(self.matches(["A  B   C", "1  ...  3"], "A    B       C\n1    2222    3\n"))
        self.assertFalse(self.matches(["A B C"], "A BC\n"))
        key = "example.org/x+0123abcd+AUh2SoUO+STj4r+CYf4zCJvrmiPOZXMhLVxqN0kNTG5+"
        real = "example.org/x+99999999+BBBBSoUO+STj4r+CYf4zCJvrmiPOZXMhLVxqN0kNTG5+"
        self.assertTrue(self.matches([key], real + "\n"))
        self.assertEqual(self.bind("--key " + key), "--key " + real)
        self.assertFalse(self.matches([key], "example.org/x+99999999+CCCCSoUO\n"))
        self.assertFalse(self.matches(["other.org/x+0123abcd+AUh2SoUO+STj4r+CYf4zCJvrmiPOZXMhLVxqN0kNTG5+"], real + "\n"))
        self.assertIn(str(self.ports["7070"]), self.bind("http://127.0.0.1:7070"))


if __name__ == "__main__":
    unittest.main()
