#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Licence checks (the operations issue, "Licence").

  check_licence.py third-party [--list THIRD_PARTY.md] [BINARY...]
      ldd on each binary (default: $MQTTD_BIN and $MQTTCTL_BIN), every shared library mapped to
      its Debian package with dpkg -S; fails naming each package that the list does not name in
      backticks (`pkg`), and each library that no package owns or that ldd cannot find.

  check_licence.py spdx [--root DIR]
      every source file (git ls-files, plus untracked files that are not ignored; or a walk of the
      tree that skips build dirs when there is no .git) of the kinds below carries
      "SPDX-License-Identifier: Apache-2.0" in the comment style of its kind, on line 1, or after
      the shebang and/or `# -*- coding` line (files under a Helm chart's templates/ may use the
      template comment {{/* SPDX-License-Identifier: Apache-2.0 */}}, which is not rendered);
      fails naming the files that do not.

Exit 0 on success, 1 on a finding, 2 on a usage or environment error.
"""
import argparse
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAG = "SPDX-License-Identifier: Apache-2.0"

SLASH_EXTS = {".h", ".hh", ".hpp", ".c", ".cc", ".cpp", ".proto", ".go", ".mjs", ".js"}
HASH_EXTS = {".py", ".sh", ".cmake", ".yaml", ".yml", ".cfg"}
HASH_NAMES = {"CMakeLists.txt"}
# Directories whose files are inputs compared byte for byte (fuzz corpora, golden files, test
# data) or are not ours (node_modules), or build output.
SKIP_DIRS = {"corpus", "testdata", "golden", "fixtures", "node_modules", ".git", "__pycache__"}
GENERATED = re.compile(r"\.(pb|grpc\.pb)\.(h|cc)$")
CODING = re.compile(r"^[ \t\f]*#.*?coding[:=]")
# Helm templates (*.yaml, *.tpl under a chart's templates/) may use a template comment instead,
# which is not rendered into every manifest: {{/* SPDX-License-Identifier: Apache-2.0 */}}.
TEMPLATE_TAG = re.compile(r"^\{\{-?\s*/\*\s*" + re.escape(TAG) + r"\s*\*/\s*-?\}\}$")


# ---------------------------------------------------------------- third-party list

def listed_packages(list_path):
    with open(list_path, encoding="utf-8") as f:
        text = f.read()
    names = set()
    for token in re.findall(r"`([^`\s]+)`", text):
        names.add(token.split(":")[0])
    return names


def ldd_libraries(binary):
    """Returns (paths, missing): resolved library paths and names ldd could not find."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ldd {binary} failed: {out.stderr.strip() or out.stdout.strip()}")
    paths, missing = set(), set()
    for line in out.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            missing.add(line.split()[0])
        elif "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
            if target.startswith("/"):
                paths.add(target)
        elif line.startswith("/"):  # the dynamic loader
            paths.add(line.split()[0])
        # else linux-vdso.so.1: in the kernel, no file
    return paths, missing


def spellings(path):
    """The path as ldd printed it, its real path, and both with /usr toggled: usr-merged Debian
    records either spelling in dpkg's database."""
    real = os.path.realpath(path)
    out = []
    for p in (path, real):
        bare = p[4:] if p.startswith("/usr/") else p
        for c in (p, bare, "/usr" + bare):
            if c not in out:
                out.append(c)
    return out


def owners(paths):
    """Maps each library path to its package, or None. One dpkg -S call for all spellings."""
    candidates = {c: p for p in paths for c in spellings(p)}
    out = subprocess.run(["dpkg", "-S"] + sorted(candidates), capture_output=True, text=True)
    found = {}
    for line in out.stdout.splitlines():
        pkgs, sep, file = line.partition(": ")
        if not sep or file not in candidates:
            continue
        pkg = pkgs.split(",")[0].strip().split(":")[0]
        found.setdefault(candidates[file], pkg)
    return {p: found.get(p) for p in paths}


def check_third_party(list_path, binaries):
    if not binaries:
        binaries = [b for b in (os.environ.get("MQTTD_BIN"), os.environ.get("MQTTCTL_BIN")) if b]
    if not binaries:
        print("no binaries: pass them as arguments or set MQTTD_BIN/MQTTCTL_BIN", file=sys.stderr)
        return 2
    listed = listed_packages(list_path)
    problems = []
    needed = {}  # package -> {binary basename}
    for binary in binaries:
        if not os.path.isfile(binary):
            print(f"{binary}: not built", file=sys.stderr)
            return 2
        paths, missing = ldd_libraries(binary)
        for name in sorted(missing):
            problems.append(f"{binary}: ldd cannot find {name}")
        for path, pkg in sorted(owners(paths).items()):
            if pkg is None:
                problems.append(f"{binary}: {path} belongs to no Debian package; list it in "
                                f"{os.path.basename(list_path)} and make this test know it")
            else:
                needed.setdefault(pkg, set()).add(os.path.basename(binary))
    for pkg in sorted(needed):
        state = "listed" if pkg in listed else "NOT LISTED"
        print(f"  {pkg:28} {state:10} ({', '.join(sorted(needed[pkg]))})")
        if pkg not in listed:
            problems.append(f"package {pkg} (linked by {', '.join(sorted(needed[pkg]))}) is not "
                            f"named in {list_path}: add a row with its licence "
                            f"(/usr/share/doc/{pkg}/copyright)")
    if problems:
        print("FAIL:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print(f"OK: all {len(needed)} packages linked by {len(binaries)} binaries are listed in "
          f"{list_path}")
    return 0


# ---------------------------------------------------------------- SPDX lines

def comment_prefix(rel, root):
    base = os.path.basename(rel)
    ext = os.path.splitext(base)[1]
    if ext == ".tpl" and "/templates/" in "/" + rel:
        return "{{/*"
    if ext in SLASH_EXTS:
        return "//"
    if ext in HASH_EXTS or base in HASH_NAMES:
        return "#"
    if ext == "":
        try:
            with open(os.path.join(root, rel), "rb") as f:
                if f.read(2) == b"#!":
                    return "#"  # an extensionless script
        except OSError:
            pass
    return None


def skipped(rel):
    parts = rel.split("/")
    return any(p in SKIP_DIRS for p in parts[:-1]) or GENERATED.search(rel) is not None


def source_files(root):
    if os.path.exists(os.path.join(root, ".git")):
        out = subprocess.run(
            ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True)
        files = sorted(set(f.decode() for f in out.stdout.split(b"\0") if f))
    else:
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames
                                 if not d.startswith("build") and d not in SKIP_DIRS
                                 and (not d.startswith(".") or d in (".ci", ".github")))
            for name in filenames:
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
    return [f for f in sorted(files)
            if not skipped(f) and os.path.isfile(os.path.join(root, f))]


def has_spdx(path, rel, prefix):
    with open(path, "rb") as f:
        head = f.read(4096).decode("utf-8", "replace").splitlines()[:3]
    want = f"{prefix} {TAG}"
    in_templates = "/templates/" in "/" + rel
    i = 0
    if i < len(head) and head[i].startswith("#!"):
        i += 1
    if i < len(head) and i < 2 and CODING.match(head[i]):
        i += 1
    if i >= len(head):
        return False
    line = head[i].rstrip()
    return line == want or (in_templates and TEMPLATE_TAG.match(line) is not None)


def check_spdx(root):
    checked, missing = 0, []
    for rel in source_files(root):
        prefix = comment_prefix(rel, root)
        if prefix is None:
            continue
        checked += 1
        if not has_spdx(os.path.join(root, rel), rel, prefix):
            want = "{{/* " + TAG + " */}}" if prefix == "{{/*" else f"{prefix} {TAG}"
            missing.append(f"{rel}: first line (after any shebang/coding line) must be "
                           f"'{want}'")
    if missing:
        print(f"FAIL: {len(missing)} of {checked} source files lack the SPDX line:",
              file=sys.stderr)
        for m in missing:
            print("  " + m, file=sys.stderr)
        return 1
    print(f"OK: {checked} source files carry '{TAG}'")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tp = sub.add_parser("third-party")
    tp.add_argument("--list", default=os.path.join(REPO, "THIRD_PARTY.md"))
    tp.add_argument("binaries", nargs="*")
    sp = sub.add_parser("spdx")
    sp.add_argument("--root", default=REPO)
    args = ap.parse_args()
    try:
        if args.cmd == "third-party":
            return check_third_party(args.list, args.binaries)
        return check_spdx(os.path.abspath(args.root))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
