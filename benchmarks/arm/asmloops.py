"""AArch64 assembly helpers shared by mca.py and insn_count.py: the
multiply-accumulate instructions of the kernels, and the innermost loops of a
function, from GCC's assembly output (-S) or from objdump's disassembly.

Loops are natural loops of the function's control-flow graph: a back edge
goes to a block (the header) that dominates its source, and the loop is every
block that reaches the source without passing through the header (so a loop
that GCC enters in its middle is found whole). An innermost loop holds no
other loop's header. Its instructions are listed in address order; forward
branches inside it (a tail store, a call) make some blocks optional, and
``Loop.every`` keeps the blocks that run on every iteration (those that
dominate each back edge). Jump-table targets (``br``) count as entries.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

#: mnemonic -> (class, products per destination lane). The class names the
#: row of the peak table (bench/peaks.py) that its throughput comes from. The
#: widening multiplies without accumulate (smull: GCC's first product of a
#: sum that starts at zero) issue on the same pipes as smlal.
MAC_MNEMONICS = {
    **{m: ("smlal", 1) for m in ("smlal", "smlal2", "umlal", "umlal2", "smlsl", "smlsl2", "umlsl", "umlsl2",
                                 "smull", "smull2", "umull", "umull2")},
    **{m: ("mla", 1) for m in ("mla", "mls", "mul")},
    **{m: ("dot", 4) for m in ("sdot", "udot", "usdot", "sudot")},
    **{m: ("mmla", 8) for m in ("smmla", "ummla", "usmmla")},
}

#: What one MAC instruction of a class is in bench/peaks.py's INSTRUCTIONS.
PEAKS_INSTRUCTION = {"smlal": "smlal v.4s", "dot": "sdot v.4s", "mmla": "usmmla v.4s"}

#: Direct branches: b, b.cond (GCC writes bcs, objdump b.cs), cbz, cbnz, tbz, tbnz; not bl.
BRANCHES = re.compile(r"^(b\.?(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al|nv)|b|cbz|cbnz|tbz|tbnz)$")
_LANES = {"16b": 16, "8b": 8, "8h": 8, "4h": 4, "4s": 4, "2s": 2, "2d": 2, "1d": 1}


def mac_info(mnemonic: str, operands: str):
    """(class, MACs) of a multiply-accumulate instruction, or None."""
    entry = MAC_MNEMONICS.get(mnemonic)
    if entry is None or not operands.lstrip().startswith("v"):
        return None
    cls, per_lane = entry
    m = re.match(r"\s*v\d+\.(\w+)", operands)
    lanes = _LANES.get(m.group(1).lower(), 0) if m else 0
    return cls, lanes * per_lane


@dataclass
class Insn:
    addr: int | None  # objdump only
    mnemonic: str
    operands: str
    text: str  # as llvm-mca reads it

    @property
    def mac(self):
        return mac_info(self.mnemonic, self.operands)

    @property
    def simd(self) -> bool:
        return bool(re.search(r"\b[vqd]\d+\b|\bv\d+\.", self.operands))


@dataclass
class Loop:
    function: str  # mangled
    label: str  # the header's GCC label (or its index in the function), or its address in hex
    insns: list = field(default_factory=list)  # every block of the loop, in address order
    every: list = field(default_factory=list)  # the blocks that run on every iteration (dominate each back edge)

    @property
    def branchy(self) -> bool:
        """Whether some blocks of the loop may be skipped in an iteration."""
        return len(self.every) != len(self.insns)

    @property
    def macs(self):
        return [i for i in self.insns if i.mac]

    def mac_summary(self, insns=None) -> str:
        counts = {}
        for i in (self.insns if insns is None else insns):
            if not i.mac:
                continue
            counts[i.mnemonic] = counts.get(i.mnemonic, 0) + 1
        return " + ".join(f"{n} {m}" for m, n in sorted(counts.items(), key=lambda t: -t[1])) or "none"

    @property
    def mac_count(self) -> int:
        return sum(i.mac[1] for i in self.macs)


_TERMINATORS = re.compile(r"^(ret|br|eret)$")


def _dominators(succs: dict, root) -> dict:
    """Immediate dominators of the blocks reachable from ``root`` (Cooper, Harvey and Kennedy)."""
    order, seen, stack = [], {root}, [(root, iter(sorted(succs[root])))]
    while stack:  # post-order
        b, it = stack[-1]
        nxt = next((s for s in it if s not in seen), None)
        if nxt is None:
            order.append(b)
            stack.pop()
        else:
            seen.add(nxt)
            stack.append((nxt, iter(sorted(succs[nxt]))))
    rpo = order[::-1]
    num = {b: i for i, b in enumerate(rpo)}
    preds = {b: [p for p in seen if b in succs[p]] for b in seen}
    idom = {root: root}

    def intersect(a, b):
        while a != b:
            while num[a] > num[b]:
                a = idom[a]
            while num[b] > num[a]:
                b = idom[b]
        return a

    changed = True
    while changed:
        changed = False
        for b in rpo[1:]:
            ps = [p for p in preds[b] if p in idom]
            new = ps[0]
            for p in ps[1:]:
                new = intersect(p, new)
            if idom.get(b) != new:
                idom[b] = new
                changed = True
    return idom


def _dominates(idom: dict, a: int, b: int) -> bool:
    if b not in idom:
        return False
    while True:
        if a == b:
            return True
        if idom[b] == b:
            return False
        b = idom[b]


def _natural_loops(fn: str, insns: list, target_of) -> list:
    """The innermost natural loops of one function: ``insns`` in layout order,
    ``target_of(insn)`` the index of a branch's target in ``insns`` (None if it
    is not a local label). A back edge goes to a block (the header) that
    dominates its source; its loop is the header and every block that reaches
    the source without passing through the header."""
    n = len(insns)
    if not n:
        return []
    targets = {}
    for i, ins in enumerate(insns):
        if BRANCHES.match(ins.mnemonic):
            t = target_of(ins)
            if t is not None:
                targets[i] = t
    # Basic blocks: leaders at branch targets and after branches.
    leaders = {0} | set(targets.values())
    for i, ins in enumerate(insns):
        if (BRANCHES.match(ins.mnemonic) or _TERMINATORS.match(ins.mnemonic)) and i + 1 < n:
            leaders.add(i + 1)
    starts = sorted(leaders)
    block_of = {}
    for b, s in enumerate(starts):
        e = starts[b + 1] if b + 1 < len(starts) else n
        for i in range(s, e):
            block_of[i] = b
    ends = [(starts[b + 1] if b + 1 < len(starts) else n) - 1 for b in range(len(starts))]
    preds = {b: set() for b in range(len(starts))}
    for b, e in enumerate(ends):
        last = insns[e]
        if e in targets:
            preds[block_of[targets[e]]].add(b)
        unconditional = last.mnemonic == "b" or _TERMINATORS.match(last.mnemonic)
        if not unconditional and e + 1 < n:
            preds[b + 1].add(b)
    # Blocks without predecessors (entered through a jump table, a `br`)
    # are entries too: a virtual block -1 precedes them and block 0.
    succs = {b: set() for b in preds}
    succs[-1] = {0} | {b for b, ps in preds.items() if not ps}
    for b, ps in preds.items():
        for p in ps:
            succs[p].add(b)
    idom = _dominators(succs, -1)
    loops, latches = {}, {}  # header block -> set of blocks, the sources of its back edges
    for head, ps in preds.items():
        for src in ps:
            # A back edge: to a block that dominates its source (a branch back or, where GCC enters a
            # loop in its middle, a fall-through or a branch forward into the header).
            if not _dominates(idom, head, src):
                continue
            body, stack = {head, src}, ([src] if src != head else [])
            while stack:
                for p in preds[stack.pop()]:
                    if p not in body:
                        body.add(p)
                        stack.append(p)
            loops.setdefault(head, set()).update(body)
            latches.setdefault(head, set()).add(src)
    out = []
    for h, body in loops.items():
        if any(h2 != h and h2 in body for h2 in loops):
            continue  # not innermost: holds another loop's header
        every = {b for b in body if all(_dominates(idom, b, s) for s in latches[h])}
        out.append((h, [insns[i] for b in sorted(body) for i in range(starts[b], ends[b] + 1)], starts[h],
                    [insns[i] for b in sorted(every) for i in range(starts[b], ends[b] + 1)]))
    return out


# ---------------------------------------------------------------------------
# GCC assembly (-S)
# ---------------------------------------------------------------------------

def gcc_functions(text: str) -> dict:
    """mangled name -> list of lines (labels and instructions) of each function."""
    lines = text.split("\n")
    funcs = set(re.findall(r"^\s*\.type\s+([^,\s]+),\s*%function", text, re.M))
    out, cur = {}, None
    for line in lines:
        m = re.match(r"^([^\s:]+):", line)
        if m and m.group(1) in funcs:
            cur = m.group(1)
            out[cur] = []
            continue
        if cur is None:
            continue
        if re.match(r"^\s*\.size\s+" + re.escape(cur) + r"\b", line):
            cur = None
            continue
        out[cur].append(line)
    return out


def _gcc_insn(line: str):
    s = line.split("//")[0].strip()
    if not s or s.startswith(".") or s.endswith(":"):
        return None
    parts = s.split(None, 1)
    return Insn(None, parts[0], parts[1] if len(parts) > 1 else "", s)


def gcc_loops(text: str) -> list:
    """The innermost loops of every function of a GCC .s file."""
    loops = []
    for fn, lines in gcc_functions(text).items():
        insns, label_at, pending = [], {}, []
        for line in lines:
            m = re.match(r"^(\.L\w+):", line)
            if m:
                pending.append(m.group(1))
                continue
            ins = _gcc_insn(line)
            if ins:
                for lab in pending:
                    label_at[lab] = len(insns)
                pending = []
                insns.append(ins)

        def target_of(ins):
            return label_at.get(ins.operands.split(",")[-1].strip())

        names = {v: k for k, v in label_at.items()}
        for _, body, first, every in _natural_loops(fn, insns, target_of):
            loops.append(Loop(fn, names.get(first, str(first)), body, every))
    return loops


# ---------------------------------------------------------------------------
# objdump -d of a linked object
# ---------------------------------------------------------------------------

def objdump_function(objdump: str, path: str, start: int, size: int) -> list:
    """The instructions of [start, start + size) of ``path``, from objdump -d."""
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", f"--start-address={start:#x}",
                          f"--stop-address={start + size:#x}", path], check=True, capture_output=True,
                         text=True).stdout
    insns = []
    for line in out.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        ops = m.group(3).split("//")[0].strip()
        ops = re.sub(r"\s*<[^>]*>", "", ops)
        insns.append(Insn(int(m.group(1), 16), m.group(2), ops, f"{m.group(2)} {ops}".strip()))
    return insns


def objdump_loops(fn: str, insns: list) -> list:
    """The innermost loops of one function's disassembly (target addresses as labels)."""
    index = {ins.addr: i for i, ins in enumerate(insns)}

    def target_of(ins):
        try:
            return index.get(int(ins.operands.split(",")[-1].strip(), 16))
        except ValueError:
            return None

    return [Loop(fn, f"{insns[first].addr:#x}", body, every)
            for _, body, first, every in _natural_loops(fn, insns, target_of)]


def demangle(names, cxxfilt="aarch64-linux-gnu-c++filt") -> dict:
    names = list(names)
    if not names:
        return {}
    out = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return dict(zip(names, out.splitlines()))


def short_name(demangled: str) -> str:
    """iqk::(anonymous namespace)::dw_row<9ul, (iqk::GemmOut)0>(...) -> dw_row<9, i32>."""
    s = demangled
    s = re.sub(r"^void ", "", s)
    s = s.replace("iqk::", "").replace("(anonymous namespace)::", "")
    s = re.sub(r"\(GemmOut\)0", "i32", s)
    s = re.sub(r"\(GemmOut\)1", "f32", s)
    s = re.sub(r"\(GemmOut\)2", "q8", s)
    s = re.sub(r"(\d+)ul\b", r"\1", s)
    depth, cut = 0, len(s)
    for i, ch in enumerate(s):  # drop the parameter list (the last top-level parenthesis)
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            cut = i
    return s[:cut]
