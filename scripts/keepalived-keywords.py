#!/usr/bin/env python3
"""Derive the VRRP-side keyword list of keepalived from its source tarball.

Reads the install_keyword*() calls of keepalived/core/global_parser.c (init_global_keywords),
keepalived/vrrp/vrrp_parser.c (init_vrrp_keywords) and keepalived/trackers/track_file.c,
leaves out what is built only for LVS, BFD or the SNMP checker, and prints one
`block<TAB>keyword` line per keyword, in source order. `block` is `top level` for root
keywords, else the block the keyword is written in (`global_defs`, `vrrp_instance`,
`authentication`, ...).

    scripts/keepalived-keywords.py ../shared/keepalived-2.4.3.tar.gz \
        > vrrp-agent/src/config/keepalived-2.4.3-keywords.txt
"""
import re
import sys
import tarfile

FILES = [
    ("keepalived/core/global_parser.c", "init_global_keywords"),
    ("keepalived/vrrp/vrrp_parser.c", "init_vrrp_keywords"),
    ("keepalived/trackers/track_file.c", "add_track_file_keywords"),
]
# Conditions whose keywords are not VRRP's.
EXCLUDED = {"_WITH_LVS_", "_WITH_BFD_", "_WITH_SNMP_CHECKER_"}

CALL = re.compile(r'\b(install_keyword_root|install_keyword_quoted|install_keyword|install_sublevel_end|install_sublevel|install_level_end_handler)\s*\(\s*("([^"]+)")?')


def function_body(text, name):
    m = re.search(r"^%s\s*\(" % re.escape(name), text, re.M)
    if not m:
        sys.exit("%s not found" % name)
    end = re.search(r"^}", text[m.end():], re.M)
    return text[m.end(): m.end() + end.start()]


def keywords(text, func):
    out = []
    conds = []  # stack of (excluded?) per #if level
    stack = []  # block names for install_sublevel nesting
    root = None
    last = None
    for line in function_body(text, func).splitlines():
        s = line.strip()
        if s.startswith("#if"):
            names = set(re.findall(r"_[A-Z0-9_]+_", s))
            # `#if defined A || defined B` is built when either is; exclude only a lone one.
            conds.append(s.startswith("#ifdef") and bool(names & EXCLUDED))
            continue
        if s.startswith("#else"):
            if conds:
                conds[-1] = False
            continue
        if s.startswith("#endif"):
            if conds:
                conds.pop()
            continue
        if any(conds):
            continue
        for m in CALL.finditer(line):
            call, name = m.group(1), m.group(3)
            if call == "install_keyword_root":
                root, stack = name, []
                out.append(("top level", name))
            elif call in ("install_keyword", "install_keyword_quoted"):
                block = stack[-1] if stack else root
                out.append((block, name))
                last = name
            elif call == "install_sublevel":
                stack.append(last)
            elif call == "install_sublevel_end":
                stack.pop()
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: keepalived-keywords.py KEEPALIVED.tar.gz")
    seen = set()
    print("# keepalived's VRRP-side keywords (block<TAB>keyword), from %s by" % sys.argv[1].split("/")[-1])
    print("# scripts/keepalived-keywords.py: do not edit, regenerate.")
    with tarfile.open(sys.argv[1]) as tar:
        top = tar.getnames()[0].split("/")[0]
        for path, func in FILES:
            text = tar.extractfile("%s/%s" % (top, path)).read().decode()
            for entry in keywords(text, func):
                if entry not in seen:
                    seen.add(entry)
                    print("%s\t%s" % entry)


if __name__ == "__main__":
    main()
