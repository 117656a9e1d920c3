"""Python probes: each tries one thing a function must not be able to do.
`expect` is ("ok", exact first output or a check) or (error type, fragments
of the error message), at the namespaces level; `landlock` is the outcome at
the landlock level where it differs (no private root: a file outside is
there but Landlock refuses it with EACCES, the hostname and /proc are the
host's but unreadable). EPERM = 1, ENOENT = 2, EACCES = 13, EROFS = 30."""
import os


# Runs `action`; returns "done" or the OSError's errno (other errors by name).
PRELUDE = '''
import os, sys, errno
def attempt(action):
    try:
        action()
        return "done"
    except OSError as e:
        return e.errno
    except Exception as e:
        return type(e).__name__
'''


def binary_roots():
    """Top-level folders of the worker binaries: the read-only root holds the
    binaries at their own paths, so a build under /tmp shows a tmp entry."""
    return {p for p in os.environ.get("FLOWSTATE_HOSTILE_BINARY_ROOTS", "").split(":") if p}


def probe(name, body, expect, through_node=None, landlock=None):
    """`through_node`: the outcome through a node when it differs from the
    worker client's (run_hostile_node.py); `landlock`: at the landlock level."""
    p = {"name": name, "source": PRELUDE + body, "expect": expect}
    if through_node:
        p["through_node"] = through_node
    if landlock:
        p["landlock"] = landlock
    return p


EACCES = ("ok", 13)
DENIED = ("Exception", "PermissionError")


def returns(expression):
    return "def entrypoint(input, state):\n    return {'output': %s}\n" % expression


def libc_call(call):
    """A libc function through ctypes; returns errno (0: it worked)."""
    return ("import ctypes\n"
            "def entrypoint(input, state):\n"
            "    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    rc = %s\n"
            "    return {'output': ctypes.get_errno() if rc != 0 else 0}\n" % call)


def secret_absent(got, r):
    return True if got is False else f"got {got!r}"


PY_PROBES = [
    # Files outside the worker.
    probe("py_read_etc_passwd", returns("attempt(lambda: open('/etc/passwd').read())"), ("ok", 2), landlock=EACCES),
    probe("py_read_node_key", returns("attempt(lambda: open(input['key_file']).read())"), ("ok", 2), landlock=EACCES),
    probe("py_list_node_data_dir", returns("attempt(lambda: os.listdir(input['data_dir']))"), ("ok", 2),
          landlock=EACCES),
    probe("py_create_host_file", returns("attempt(lambda: open(input['target'], 'w').write('x'))"), ("ok", 2),
          landlock=EACCES),
    probe("py_write_in_root", returns("attempt(lambda: open('/pwned', 'w').write('x'))"), ("ok", 30), landlock=EACCES),
    # EACCES (13): the stdlib belongs to a user the worker is not; EROFS below that.
    probe("py_write_stdlib", returns("attempt(lambda: open('/usr/lib/python3.11/os.py', 'a').write('x'))"), ("ok", 13)),
    probe("py_mkdir_tmp", returns("attempt(lambda: os.mkdir('/tmp'))"), ("ok", 1)),
    probe("py_symlink", returns("attempt(lambda: os.symlink('/usr', '/u'))"), ("ok", 1)),
    probe("py_root_listing", returns("sorted(os.listdir('/'))"),
          ("ok", lambda got, r: True if set(got) <= {"etc", "lib", "lib64", "proc", "usr", "work", "home", "opt",
                                                     "srv", "mnt", *binary_roots()}
                                 and "root" not in got and ("tmp" not in got or "tmp" in binary_roots())
           else f"unexpected entries {got}"), landlock=DENIED),
    probe("py_dev_missing", returns("attempt(lambda: os.listdir('/dev'))"), ("ok", 2), landlock=EACCES),
    probe("py_sys_missing", returns("attempt(lambda: os.listdir('/sys'))"), ("ok", 2), landlock=EACCES),
    probe("py_uncaught_file_error", "def entrypoint(input, state):\n    return {'output': open('/etc/shadow').read()}\n",
          ("Exception", "FileNotFoundError"), landlock=("Exception", "PermissionError", "/etc/shadow")),
    # Sockets of every family, connecting to listeners on the host, binding.
    probe("py_tcp_connect_host", "import socket\n" + returns(
        "attempt(lambda: socket.create_connection(('127.0.0.1', input['port']), timeout=1))"), ("ok", 1)),
    probe("py_tcp6_connect_host", "import socket\n" + returns(
        "attempt(lambda: socket.create_connection(('::1', input['port6'] or 1), timeout=1))"), ("ok", 1)),
    probe("py_udp_sendto_host", "import socket\n" + returns(
        "attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', input['udp_port'])))"),
          ("ok", 1)),
    probe("py_unix_connect_host", "import socket\n" + returns(
        "attempt(lambda: socket.socket(socket.AF_UNIX).connect(input['unix_path']))"), ("ok", 1)),
    probe("py_abstract_unix_connect", "import socket\n" + returns(
        "attempt(lambda: socket.socket(socket.AF_UNIX).connect('\\0' + input['abstract']))"), ("ok", 1)),
    probe("py_bind_port", "import socket\n" + returns(
        "attempt(lambda: socket.socket().bind(('0.0.0.0', 8080)))"), ("ok", 1)),
    probe("py_netlink_socket", "import socket\n" + returns(
        "attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))"), ("ok", 1)),
    probe("py_packet_socket", "import socket\n" + returns(
        "attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))"), ("ok", 1)),
    probe("py_socketpair", "import socket\n" + returns("attempt(lambda: socket.socketpair())"), ("ok", 1)),
    probe("py_network_interfaces", returns("sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:])"),
          ("ok", ["lo"]), landlock=DENIED),
    # Processes.
    probe("py_fork", returns("attempt(os.fork)"), ("ok", 1)),
    probe("py_subprocess", "import subprocess\n" + returns("attempt(lambda: subprocess.run(['/bin/sh', '-c', 'id']))"),
          ("ok", 1)),
    # glibc's system() answers 127 << 8 when it cannot start the shell.
    probe("py_os_system", returns("os.system('touch ' + input['target'])"), ("ok", 127 << 8)),
    probe("py_execv", returns("attempt(lambda: os.execv('/usr/bin/python3.11', ['python3']))"), ("ok", 1)),
    probe("py_posix_spawn", returns("attempt(lambda: os.posix_spawn('/bin/sh', ['sh'], {}))"), ("ok", 1)),
    probe("py_kill_node", returns("attempt(lambda: os.kill(input['node_pid'], 9))"), ("ok", 1)),
    probe("py_is_pid_1", returns("[os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit())]"),
          ("ok", [1, [1]]), landlock=DENIED),
    # A function runs on the worker's main thread only: a thread left behind
    # would outlive the call (its memory, the GIL, CPU off the call's clock).
    probe("py_one_thread", "import threading\n"
          "def entrypoint(input, state):\n"
          "    t = threading.Thread(target=lambda: None)\n"
          "    t.start()\n"
          "    t.join()\n"
          "    return {'output': 'ran'}\n", ("Exception", "RuntimeError: can't start new thread")),
    probe("py_thread_bomb", "import threading, time\n"
          "def entrypoint(input, state):\n"
          "    event = threading.Event()\n"
          "    threads = []\n"
          "    for _ in range(200):\n"
          "        t = threading.Thread(target=event.wait)\n"
          "        t.start()\n"
          "        threads.append(t)\n"
          "    return {'output': len(threads)}\n", ("Exception", "RuntimeError: can't start new thread")),
    # Namespaces, mounts, tracing through ctypes; kernel interfaces.
    probe("py_ctypes_unshare", libc_call("libc.unshare(0x10000000)"), ("ok", 1)),
    probe("py_ctypes_mount", libc_call("libc.mount(b'none', b'/proc', b'tmpfs', 0, None)"), ("ok", 1)),
    # At the landlock level the namespace file opens (Landlock leaves the
    # kernel's internal nsfs alone); setns itself is refused by seccomp.
    probe("py_ctypes_setns", libc_call("libc.setns(os.open('/proc/self/ns/net', os.O_RDONLY), 0)"), ("ok", 1)),
    probe("py_ctypes_ptrace", libc_call("libc.ptrace(0, 0, None, None)"), ("ok", 1)),
    probe("py_ctypes_chroot", libc_call("libc.chroot(b'/usr')"), ("ok", 1)),
    probe("py_ctypes_setuid", libc_call("libc.setuid(1000)"), ("ok", 1)),
    probe("py_io_uring_setup", libc_call("libc.syscall(425, 8, ctypes.create_string_buffer(120))"), ("ok", 1)),
    probe("py_bpf", libc_call("libc.syscall(321, 0, None, 0)"), ("ok", 1)),
    probe("py_perf_event_open", libc_call("libc.syscall(298, None, 0, -1, -1, 0)"), ("ok", 1)),
    probe("py_keyctl", libc_call("libc.syscall(250, 0, 0, 0, 0, 0)"), ("ok", 1)),
    probe("py_clone_newuser", libc_call("libc.syscall(56, 0x10000000 | 17, None, None, None, None)"), ("ok", 1)),
    # The node's environment and this process's.
    probe("py_environment", returns("sorted(os.environ)"), ("ok", ["LC_ALL", "PATH", "TZ"])),
    probe("py_secret_env", returns("input['secret_env'] in os.environ or b'hostile-secret' in open('/proc/self/environ', 'rb').read()"),
          ("ok", secret_absent), landlock=DENIED),
    probe("py_hostname", "import socket\n" + returns("socket.gethostname()"), ("ok", "sandbox"),
          landlock=("ok", lambda got, r: True if isinstance(got, str) else f"got {got!r}")),
    # Limits: time, memory, recursion, sizes, logs.
    probe("py_infinite_loop", "def entrypoint(input, state):\n    while True:\n        pass\n",
          ("Timeout", "time limit of 1000 ms")),
    probe("py_loop_catching_timeout", "def entrypoint(input, state):\n    while True:\n        try:\n"
          "            while True:\n                pass\n        except BaseException:\n            pass\n",
          ("Timeout", "time limit")),
    probe("py_regex_backtracking", "import re\ndef entrypoint(input, state):\n"
          "    return {'output': bool(re.match(r'(a+)+$', 'a' * 64 + 'b'))}\n", ("Timeout", "time limit of 1000 ms")),
    probe("py_huge_pow", "def entrypoint(input, state):\n    return {'output': len(str(pow(7, 10**7) % 1000))}\n",
          ("Timeout", "time limit")),
    probe("py_sleep", "import time\ndef entrypoint(input, state):\n    time.sleep(60)\n", ("Timeout", "time limit of 1000 ms")),
    probe("py_unbounded_allocation", "def entrypoint(input, state):\n    hoard = []\n    while True:\n"
          "        hoard.append(bytearray(16 << 20))\n", ("ResourceExhausted", "memory")),
    probe("py_one_huge_allocation", "def entrypoint(input, state):\n    return {'output': len(bytearray(1 << 40))}\n",
          ("ResourceExhausted", "memory")),
    probe("py_deep_recursion", "def f(n):\n    return f(n + 1)\ndef entrypoint(input, state):\n    return {'output': f(0)}\n",
          ("Exception", "RecursionError")),
    probe("py_huge_output", returns("'x' * (5 << 20)"), ("ResourceExhausted", "outputs are more than")),
    probe("py_huge_state", "def entrypoint(input, state):\n    return {'state': {'blob': 'x' * (2 << 20)}}\n",
          ("ResourceExhausted", "state is more than")),
    probe("py_log_flood", "def entrypoint(input, state):\n    for i in range(100000):\n        print('line', i)\n"
          "    return {'output': 'done'}\n",
          ("ok", lambda got, r: True if got == "done" and sum(len(l) for l in r["logs"]) < 70 * 1024
           and "more lines dropped" in r["logs"][-1] else f"logs not capped: {len(r['logs'])} lines")),
    probe("py_fd_flood", "def entrypoint(input, state):\n    for fd in (1, 2):\n        os.write(fd, b'x' * 65536)\n"
          "    return {'output': 'written'}\n", ("ok", "written")),
    probe("py_segfault", "import ctypes\ndef entrypoint(input, state):\n    return {'output': ctypes.string_at(1, 1)}\n",
          ("WorkerCrashed", "crashed its worker twice"), ("Exception", "crashed its worker twice")),
    probe("py_nan_output", returns("float('nan')"), ("Exception", "NaN")),
    probe("py_cycle_output", "def entrypoint(input, state):\n    a = []\n    a.append(a)\n    return {'output': a}\n",
          ("Exception", "cycle")),
    probe("py_import_missing_package", "import requests\n" + returns("1"), ("LoadFailed", "ModuleNotFoundError")),
]
