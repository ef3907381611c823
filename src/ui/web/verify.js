// Verification in the browser, with WebCrypto's SHA-256 and Ed25519 only:
// RFC 6962/9162 hashing and inclusion proofs, C2SP signed notes and
// checkpoints, annals' entry envelope (docs/format/entry.md). Pure: no
// fetches, no DOM. Every check throws a VerifyError naming what failed.

export class VerifyError extends Error {}

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

export function b64decode(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0)
    throw new VerifyError('not base64: ' + String(s).slice(0, 40));
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function subtle() {
  if (!globalThis.crypto || !crypto.subtle)
    throw new VerifyError('this page is not in a secure context (HTTPS or localhost): the browser offers no WebCrypto to verify with');
  return crypto.subtle;
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle().digest('SHA-256', bytes));
}

// RFC 6962: leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || l || r).
export async function leafHash(entry) {
  return sha256(concat(Uint8Array.of(0), entry));
}
export async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}
const plainNodeHash = nodeHash;

function memoNodeHash(memo, left, right) {
  const k = String.fromCharCode(...left, ...right);
  let h = memo.get(k);
  if (!h) {
    h = nodeHash(left, right);
    memo.set(k, h);
  }
  return h;
}

// The root an inclusion proof leads to (RFC 9162 2.1.3.2), from the leaf
// hash at `index` in a tree of `size`; throws if the proof has the wrong
// length for that position.
// memo (a Map, optional) shares node hashes between proofs checked
// together, keyed by the exact bytes hashed: proofs of one tree meet near
// its root, and each shared node is hashed once. Sound, as a cache of
// SHA-256 over its own input is.
export async function rootFromInclusionProof(index, size, leaf, proof, memo) {
  const nodeHash = memo ? (l, r) => memoNodeHash(memo, l, r) : plainNodeHash;
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn > sn) throw new VerifyError(`index ${index} is outside a tree of ${size}`);
  if (leaf.length !== 32) throw new VerifyError('the leaf hash is not 32 bytes');
  if (proof.some((p) => p.length !== 32)) throw new VerifyError('a proof hash is not 32 bytes');
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new VerifyError('the inclusion proof is longer than the tree is deep');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerifyError('the inclusion proof is shorter than the tree is deep');
  return r;
}

// A verifier key "name+hash+base64(alg || public key)" (C2SP signed-note):
// alg 0x01 for a log's Ed25519 key, 0x04 for a witness's cosignature key
// (c2sp.org/tlog-cosignature).
export async function parseVerifierKey(vkey, alg = 1) {
  // The key's base64 may hold '+' too: split at the first two only.
  const t = String(vkey).trim();
  const a = t.indexOf('+'), b = a < 0 ? -1 : t.indexOf('+', a + 1);
  if (a <= 0 || b < 0) throw new VerifyError('a verifier key is NAME+HASH+KEY');
  const [name, hashHex, keyB64] = [t.slice(0, a), t.slice(a + 1, b), t.slice(b + 1)];
  if (!/^[0-9a-f]{8}$/.test(hashHex)) throw new VerifyError('the verifier key hash is not 8 hex digits');
  const key = b64decode(keyB64);
  if (key.length !== 33 || key[0] !== alg)
    throw new VerifyError(alg === 1 ? 'the verifier key is not an Ed25519 key (0x01 and 32 bytes)'
      : 'the key is not a cosignature/v1 key (0x04 and 32 bytes)');
  const id = (await sha256(concat(te.encode(name + '\n'), key))).subarray(0, 4);
  if (hex(id) !== hashHex) throw new VerifyError('the verifier key hash does not match its name and key');
  return { name, id, publicKey: key.subarray(1), text: String(vkey).trim() };
}

// A signed note: its text (what was signed) and its signature lines.
export function parseNote(note) {
  const sep = note.lastIndexOf('\n\n');
  if (sep < 0) throw new VerifyError('the checkpoint is not a signed note: no blank line before its signatures');
  const text = note.slice(0, sep + 1);
  const sigs = [];
  for (const line of note.slice(sep + 2).split('\n')) {
    if (line === '') continue;
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new VerifyError('malformed signature line: ' + line.slice(0, 60));
    const raw = b64decode(m[2]);
    if (raw.length < 5) throw new VerifyError('signature too short');
    sigs.push({ name: m[1], id: raw.subarray(0, 4), sig: raw.subarray(4) });
  }
  if (!sigs.length) throw new VerifyError('the checkpoint carries no signature');
  return { text, sigs };
}

// Checks a signed note's signature by `key` (from parseVerifierKey);
// returns the signed text. Signatures by other keys are ignored.
export async function verifyNote(note, key) {
  const { text, sigs } = parseNote(note);
  const sig = sigs.find((s) => s.name === key.name && equalBytes(s.id, key.id));
  if (!sig) throw new VerifyError(`the note is not signed by ${key.name}+${hex(key.id)}`);
  if (sig.sig.length !== 64) throw new VerifyError('the Ed25519 signature is not 64 bytes');
  let pub;
  try {
    pub = await subtle().importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    throw new VerifyError('this browser cannot verify Ed25519 signatures (' + e.message + ')');
  }
  const ok = await subtle().verify({ name: 'Ed25519' }, pub, sig.sig, te.encode(text));
  if (!ok) throw new VerifyError('the signature does not verify with the key');
  return text;
}

// A witness policy as GET /v1/witnesses gives it: {quorum (in words),
// rule (a tree of witnesses and groups), witnesses: [{name, key}]} with
// each witness's cosignature key parsed. null for a server without one.
export async function parseWitnessPolicy(answer) {
  if (!answer || !answer.policy) return null;
  const witnesses = await Promise.all((answer.witnesses || []).map(async (w) =>
    ({ name: w.name, key: await parseVerifierKey(w.key, 4) })));
  return { quorum: answer.quorum, rule: answer.rule, witnesses };
}

// Whether the witnesses in `names` (a Set) meet `rule`.
export function quorumMet(rule, names) {
  if (rule.witness !== undefined) return names.has(rule.witness);
  let met = 0;
  for (const m of rule.members || []) if (quorumMet(m, names)) met++;
  return met >= rule.k;
}

// The cosignatures on a checkpoint by the policy's witnesses: the message
// "cosignature/v1\ntime T\n" + the checkpoint's text, Ed25519, T the
// first 8 bytes of the signature (c2sp.org/tlog-cosignature). Returns
// {met, quorum, witnessed: [{name, time}], failed: [{name, error}]};
// witnesses with no cosignature are simply not in `witnessed`.
export async function verifyCosignatures(note, policy) {
  const { text, sigs } = parseNote(note);
  const witnessed = [], failed = [];
  for (const w of policy.witnesses) {
    const sig = sigs.find((s) => s.name === w.key.name && equalBytes(s.id, w.key.id));
    if (!sig) continue;
    try {
      if (sig.sig.length !== 72) throw new VerifyError('a cosignature is 72 bytes');
      const time = new DataView(sig.sig.buffer, sig.sig.byteOffset, 8).getBigUint64(0);
      const pub = await subtle().importKey('raw', w.key.publicKey, { name: 'Ed25519' }, false, ['verify']);
      const ok = await subtle().verify({ name: 'Ed25519' }, pub, sig.sig.subarray(8),
        te.encode(`cosignature/v1\ntime ${time}\n` + text));
      if (!ok) throw new VerifyError('the cosignature does not verify');
      witnessed.push({ name: w.name, time: Number(time) });
    } catch (e) {
      failed.push({ name: w.name, error: e.message });
    }
  }
  const met = quorumMet(policy.rule, new Set(witnessed.map((w) => w.name)));
  return { met, quorum: policy.quorum, witnessed, failed };
}

// A checkpoint signed by `key`: {origin, size, root, text}. annals names
// its origin after its key (docs/format/checkpoint.md), so another origin
// is refused.
export async function verifyCheckpoint(note, key) {
  const text = await verifyNote(note, key);
  const lines = text.split('\n');
  if (lines.length < 4) throw new VerifyError('the checkpoint body has fewer than three lines');
  const [origin, sizeText, rootText] = lines;
  if (origin !== key.name) throw new VerifyError(`the checkpoint names origin ${origin}, not ${key.name}`);
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new VerifyError('the checkpoint size is not a decimal number');
  const root = b64decode(rootText);
  if (root.length !== 32) throw new VerifyError('the checkpoint root is not 32 bytes');
  return { origin, size: BigInt(sizeText), root, text };
}

// annals' entry envelope: version 0x01, flags, u16 BE metadata length, the
// metadata JSON, then the payload (flags bit 0 clear) or its SHA-256 and
// u64 BE length (bit 0 set: the payload is kept beside the log).
export function decodeEntry(entry) {
  if (entry.length < 4) throw new VerifyError('the entry is shorter than its header');
  if (entry[0] !== 1) throw new VerifyError(`unknown entry version ${entry[0]}`);
  const flags = entry[1];
  if (flags & ~1) throw new VerifyError(`unknown entry flags 0x${flags.toString(16)}`);
  const metaLen = (entry[2] << 8) | entry[3];
  if (4 + metaLen > entry.length) throw new VerifyError('the entry metadata runs past its end');
  let meta;
  try {
    meta = JSON.parse(td.decode(entry.subarray(4, 4 + metaLen)));
  } catch (e) {
    throw new VerifyError('the entry metadata is not JSON: ' + e.message);
  }
  const body = entry.subarray(4 + metaLen);
  if (!(flags & 1)) return { meta, payload: body, external: null };
  if (body.length !== 40) throw new VerifyError('an external payload reference is not 40 bytes');
  const len = new DataView(body.buffer, body.byteOffset + 32, 8).getBigUint64(0);
  return { meta, payload: null, external: { sha256: body.subarray(0, 32), length: len } };
}

// The payload as JSON if it is JSON, else null.
export function payloadJson(payload) {
  try {
    return JSON.parse(td.decode(payload));
  } catch {
    return null;
  }
}

// A receipt as /v1/entries/<index> answers it. Returns the steps checked
// ({what, ok, detail}) and, if all passed, the entry decoded from its own
// bytes (never from the server's "event"). `blob` (optional) is the
// external payload's bytes, checked against the digest in the entry.
export async function verifyEntryReceipt(answer, key, blob) {
  const steps = [];
  const step = (what, detail) => steps.push({ what, ok: true, detail });
  try {
    const cp = await verifyCheckpoint(answer.checkpoint, key);
    step('checkpoint signature', `Ed25519 signature by ${key.name}+${hex(key.id)} over tree size ${cp.size}`);
    const entry = b64decode(answer.entry);
    const leaf = await leafHash(entry);
    if (answer.leaf_hash !== undefined && b64encode(leaf) !== answer.leaf_hash)
      throw new VerifyError("the entry's bytes do not hash to the leaf hash the server gave");
    step('leaf hash', 'SHA-256(0x00 || entry) = ' + b64encode(leaf));
    const p = answer.inclusion_proof;
    if (!p) throw new VerifyError('no inclusion proof yet: the entry is newer than the checkpoint; ask again shortly');
    if (String(p.index) !== String(answer.index)) throw new VerifyError('the proof is for another index');
    if (BigInt(p.tree_size) !== cp.size) throw new VerifyError('the proof is against another tree size than the checkpoint');
    const root = await rootFromInclusionProof(p.index, p.tree_size, leaf, p.hashes.map(b64decode));
    if (!equalBytes(root, cp.root))
      throw new VerifyError(`entry ${answer.index} does not hash into the signed tree: the proof leads to another root`);
    step('inclusion proof', `entry ${answer.index} is in the signed tree of ${cp.size} (${p.hashes.length} hashes)`);
    const dec = decodeEntry(entry);
    if (dec.external) {
      if (!blob) throw new VerifyError('the payload is kept beside the log and was not fetched');
      if (BigInt(blob.length) !== dec.external.length || !equalBytes(await sha256(blob), dec.external.sha256))
        throw new VerifyError('the payload does not match the SHA-256 and length in the entry');
      dec.payload = blob;
      step('external payload', `SHA-256 ${hex(dec.external.sha256)}, ${dec.external.length} bytes`);
    }
    return { ok: true, steps, checkpoint: cp, entry: dec };
  } catch (e) {
    steps.push({ what: 'failed', ok: false, detail: e.message });
    return { ok: false, steps, error: e.message };
  }
}

// The "receipt" of a question asked with proof=true: the checkpoint and,
// per evidence index, its leaf hash and inclusion proof. Returns
// {ok, error, size, results: Map(index -> {ok, error})}.
export async function verifyAnswerReceipt(receipt, key) {
  const results = new Map();
  let cp, witnesses = null;
  try {
    cp = await verifyCheckpoint(receipt.checkpoint, key);
    // key.witnesses (parseWitnessPolicy), if set: who cosigned it.
    if (key.witnesses) witnesses = await verifyCosignatures(receipt.checkpoint, key.witnesses);
  } catch (e) {
    return { ok: false, error: e.message, results };
  }
  // The proofs side by side: each is a chain of digests, but WebCrypto
  // answers them off the main thread, so hundreds at once take little
  // longer than one.
  const memo = new Map();
  const checked = await Promise.all(Object.entries(receipt.inclusion_proofs || {}).map(async ([index, p]) => {
    try {
      const leaf = b64decode(p.leaf_hash);
      if (leaf.length !== 32) throw new VerifyError('leaf hash is not 32 bytes');
      const root = await rootFromInclusionProof(index, cp.size, leaf, p.hashes.map(b64decode), memo);
      if (!equalBytes(root, cp.root)) throw new VerifyError(`entry ${index}: the proof leads to another root`);
      return [index, { ok: true }];
    } catch (e) {
      return [index, { ok: false, error: e.message }];
    }
  }));
  let ok = true;
  for (const [index, r] of checked) {
    results.set(index, r);
    ok = ok && r.ok;
  }
  return { ok, error: ok ? '' : 'an inclusion proof does not verify', size: cp.size, results, witnesses };
}

// Several answers' verifications (pages of one answer) as one: ok if all
// are, the largest tree size, every entry's result.
export function mergeVerifications(list) {
  const results = new Map();
  let ok = list.length > 0, size = 0, error = '', witnesses = null;
  for (const v of list) {
    for (const [i, r] of v.results) results.set(i, r);
    // The newest checkpoint's witnesses stand for the answer.
    if (v.witnesses && v.size >= size) witnesses = v.witnesses;
    if (!v.ok) {
      ok = false;
      error = error || v.error;
    }
    if (v.size > size) size = v.size;
  }
  return { ok, error, size, results, witnesses };
}
