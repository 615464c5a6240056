"""The program the sandbox runs (``python -I -B -c PRELUDE``): the audit-hook layer of
``pts.sandbox`` and the pass proof. It reads the sources and the run's token from standard
input, installs the audit hook, compiles every source, runs them in order in one ``__main__``
namespace, and prints the token only when all have run (``sandbox`` explains both layers).
Kept as source text: it runs in a fresh interpreter, never in this one."""

PRELUDE = r'''
def _phi4_sandbox(main_code):
    import _imp, _posixsubprocess, _signal, gc, json, posix, resource, signal, sys

    _posixsubprocess.fork_exec = None  # loaded now, so subprocess imports; never loaded again (below)

    # The run's sources and pass token, on stdin: read before any untrusted code runs.
    chunks = []
    while True:
        chunk = posix.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    payload = json.loads(b"".join(chunks))
    null = posix.open("/dev/null", posix.O_RDONLY)
    posix.dup2(null, 0)
    posix.close(null)
    token = payload["token"].encode()
    if payload["max_processes"] is not None:  # under bwrap: counted in its user namespace, not the caller's
        resource.setrlimit(resource.RLIMIT_NPROC, (payload["max_processes"], payload["max_processes"]))
    parts = tuple((str(name), str(source)) for name, source in payload["parts"])
    # A copy of the program for the source lines in tracebacks; what runs is the text read above.
    with open(parts[0][0], "w", encoding="utf-8", errors="replace") as f:
        f.write(parts[0][1])
    if not payload.get("audit_hook", True):  # the tests showing that bwrap alone holds
        return parts
    del chunks, chunk, payload

    scratch = posix.getcwd()
    getcwd, lstat, readlink, write, getframe = posix.getcwd, posix.lstat, posix.readlink, posix.write, sys._getframe
    create_builtin, create_dynamic = _imp.create_builtin, _imp.create_dynamic
    gc_isenabled, gc_disable, gc_enable = gc.isenabled, gc.disable, gc.enable
    error, import_error, oserror = PermissionError, ImportError, OSError
    encoding, str_, bytes_, int_, list_, type_, as_str = (sys.getfilesystemencoding(), str, bytes, int, list, type,
                                                          str.__str__)
    write_flags = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
    refused = frozenset({
        "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
        "pty.spawn", "os.kill", "os.killpg", "os.symlink", "os.link", "socket.connect", "socket.bind",
        "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
        "ctypes.dlopen", "resource.setrlimit", "resource.prlimit", "sys.settrace", "sys.setprofile",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
    })
    refused_imports = frozenset({"_posixsubprocess", "_ctypes", "ctypes", "_xxsubinterpreters",
                                 "_xxinterpchannels", "_interpreters", "_interpchannels", "_interpqueues",
                                 "_sqlite3", "_posixshmem"})
    frame_attributes = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
    loaded = frozenset(sys.modules)
    # event -> (index of a path argument, index of the dir_fd it is relative to, or None), per path argument
    mutations = type_(type_.__dict__)({
        "os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),), "os.rename": ((0, 2), (1, 3)),
        "os.chmod": ((0, 2),), "os.chown": ((0, 3),), "os.utime": ((0, 3),), "os.truncate": ((0, None),),
        "os.chflags": ((0, None),), "os.lchflags": ((0, None),), "os.setxattr": ((0, None),),
        "os.removexattr": ((0, None),), "shutil.rmtree": ((0, 1),), "sqlite3.connect": ((0, None),),
    })

    def resolve(path, dir_fd):
        """``path`` made absolute (against ``dir_fd`` or the working directory), ".." and symbolic
        links resolved; None when it is not a plain str or bytes (a subclass could lie)."""
        if type_(path) is bytes_:
            path = path.decode(encoding, "surrogateescape")
        elif type_(path) is not str_:
            return None
        if not path.startswith("/"):
            base = getcwd() if dir_fd is None or dir_fd == -1 else readlink("/proc/self/fd/%d" % dir_fd)
            path = base + "/" + path
        resolved, pending, links = "", path.split("/")[::-1], 0
        while pending:
            part = pending.pop()
            if part == "" or part == ".":
                continue
            if part == "..":
                resolved = resolved.rpartition("/")[0]
                continue
            candidate = resolved + "/" + part
            try:
                is_link = lstat(candidate).st_mode & 0o170000 == 0o120000
            except oserror:
                is_link = False
            if is_link and links < 40:
                links += 1
                target = readlink(candidate)
                resolved = "" if target.startswith("/") else resolved
                pending += target.split("/")[::-1]
            else:
                resolved = candidate
        return resolved or "/"

    def under(path, roots, dir_fd=None):
        resolved = resolve(path, dir_fd)
        if resolved is None:
            return False
        for root in roots:
            if resolved == root or resolved.startswith(root + "/"):
                return True
        return False

    # Code may be loaded from the interpreter's and the system's library directories, data read
    # from those and the scratch directory; nothing else on the machine.
    code_roots = tuple(frozenset(
        root for root in (resolve(p, None) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                    sys.base_exec_prefix, "/usr/lib", "/usr/lib32", "/usr/lib64",
                                                    "/usr/local/lib", "/lib", "/lib32", "/lib64"))
        if root and root != "/"))
    read_roots = code_roots + (scratch, "/usr/share", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
    write_roots = (scratch,)

    class Spec:
        """What ``_imp.create_builtin`` / ``create_dynamic`` read, built by the hook from checked strings."""
        __slots__ = ("name", "origin")

        def __init__(self, name, origin):
            self.name, self.origin = name, origin

    state = 0  # 1: the untrusted code runs, 2: the pass has been printed

    def hook(event, args):
        # No collection while the hook runs: a finalizer it set off would run with the hook's frame
        # on the stack, one f_back away from this closure.
        enabled = gc_isenabled()
        gc_disable()
        try:
            check(event, args)
        finally:
            if enabled:
                gc_enable()

    def check(event, args):
        nonlocal state
        if event == "import" and as_str(args[0]) in refused_imports:
            raise import_error("sandbox: import " + as_str(args[0]) + " is not allowed")  # optional imports degrade
        if event in refused or (event == "socket.__new__" and args[1] != 1):  # 1: AF_UNIX
            raise error("sandbox: " + event + " is not allowed")
        if event == "object.__getattr__":
            if args[1] in frame_attributes:
                raise error("sandbox: ." + as_str(args[1]) + " is not allowed")
        elif event == "open":
            path, mode, flags = args
            if type_(path) is not int_:
                # mode None is os.open, whose dir_fd the event omits: refused outside, so no outside directory fd
                if mode is None or flags & write_flags:
                    if not under(path, write_roots):
                        raise error("sandbox: " + event + " outside the scratch directory")
                elif not under(path, read_roots):
                    raise error("sandbox: reading outside the scratch and library directories")
        elif event in mutations:
            for i, j in mutations[event]:
                if type_(args[i]) is int_:  # fchmod and the like would reach outside files opened read-only
                    if event != "os.truncate":
                        raise error("sandbox: " + event + " on a file descriptor")
                elif not under(args[i], write_roots, None if j is None else args[j]):
                    raise error("sandbox: " + event + " outside the scratch directory")
        elif event == "phi4.sandbox.create":  # the checked _imp.create_builtin / create_dynamic
            kind, name, origin, box = args
            if type_(name) is not str_ or type_(box) is not list_ or name in refused_imports or name in loaded:
                raise import_error("sandbox: loading a module named %r again is not allowed" % (name,))
            if kind == "builtin":
                module = create_builtin(Spec(name, None))
            elif type_(origin) is str_ and under(origin, code_roots):
                module = create_dynamic(Spec(name, origin))
            else:
                raise import_error("sandbox: native code from outside the library directories is not allowed")
            list_.append(box, module)
        elif event == "phi4.sandbox.begin" or event == "phi4.sandbox.pass":
            # Only the prelude's own frame (2 up: check, hook), once each, in order: not the code under test.
            if getframe(2).f_code is not main_code or state != (0 if event == "phi4.sandbox.begin" else 1):
                raise error("sandbox: " + event + " is not allowed")
            state += 1
            if state == 2 and token:
                write(1, b"\n" + token + b"\n")

    sys.addaudithook(hook)

    def refuse(*args, **kwargs):
        raise error("sandbox: not allowed")

    def checked_create_builtin(spec, _audit=sys.audit):
        box = []
        _audit("phi4.sandbox.create", "builtin", spec.name, None, box)
        return box[0]

    def checked_create_dynamic(spec, file=None, _audit=sys.audit):
        box = []
        _audit("phi4.sandbox.create", "dynamic", spec.name, spec.origin, box)
        return box[0]

    _imp.create_builtin, _imp.create_dynamic = checked_create_builtin, checked_create_dynamic
    # Calls without an audit event of their own (mknod, pidfd, signal handlers, which receive the
    # interrupted frame), and friendlier errors for the rest.
    import os
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp", "kill", "killpg", "mknod", "mkfifo",
                 "pidfd_open", "pidfd_send_signal", "pthread_kill", "signal"):
        for module in (os, posix, signal, _signal):
            if hasattr(module, name):
                setattr(module, name, refuse)
    return parts


def _phi4_main(parts):
    import sys, types
    audit, run, stdout = sys.audit, exec, sys.stdout
    codes = [compile(source, name, "exec", dont_inherit=True) for name, source in parts]
    module = types.ModuleType("__main__")
    module.__file__ = parts[0][0]
    namespace = module.__dict__
    sys.modules["__main__"] = module
    del parts, module
    audit("phi4.sandbox.begin")
    for code in codes:
        run(code, namespace)
    stdout.flush()
    audit("phi4.sandbox.pass")


_phi4_main(_phi4_sandbox(_phi4_main.__code__))
'''
