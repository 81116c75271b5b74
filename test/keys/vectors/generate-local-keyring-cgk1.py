# Independent generator for the CGK1 local-keyring test vectors (Python 'cryptography', not our TS code).
# Run: python3 test/keys/vectors/generate-local-keyring-cgk1.py > test/keys/vectors/local-keyring-cgk1.json
import json, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def canon(ctx):
    items = sorted(((k.encode('utf-8'), v.encode('utf-8')) for k, v in ctx.items()), key=lambda kv: kv[0])
    out = b''
    for k, v in items:
        out += struct.pack('>H', len(k)) + k + struct.pack('>H', len(v)) + v
    return out

def vector(name, master, key_id, nonce, data_key, ctx):
    kid = key_id.encode('utf-8')
    header = b'CGK1' + bytes([len(kid)]) + kid
    aad = header + canon(ctx)
    ct_tag = AESGCM(master).encrypt(nonce, data_key, aad)
    wrapped = header + nonce + ct_tag
    return dict(name=name, masterKeyHex=master.hex(), keyId=key_id, nonceHex=nonce.hex(), dataKeyHex=data_key.hex(),
                context=ctx, canonicalContextHex=canon(ctx).hex(), aadHex=aad.hex(), wrappedHex=wrapped.hex())

master = bytes(range(0x00, 0x20))
data_key = bytes(range(0x20, 0x40))
vectors = [
  vector('empty context', master, 'k1', bytes.fromhex('000102030405060708090a0b'), data_key, {}),
  vector('ascii context', master, 'cg-master-2026.01', bytes.fromhex('a0a1a2a3a4a5a6a7a8a9aaab'), data_key,
         {'coffer': 'photos', 'key': 'albums/2026/summer.jpg', 'bucket': 'coffer-photos-1250000000'}),
  # U+FF21 sorts before U+1F600 in UTF-8 byte order but after it in UTF-16 (JS string) order.
  vector('non-ascii context, utf-8 order differs from utf-16 order', bytes.fromhex('ff' * 32), 'K_2.x-y', bytes.fromhex('ffffffffffffffffffffffff'),
         bytes(32), {'\U0001F600': 'grin', '\uFF21': 'fullwidth A', 'z': '', 'a\u00e4': 'caf\u00e9 \u2603'}),
]
print(json.dumps({'description': 'CGK1 local-keyring wrapped data key vectors; generated independently with Python cryptography (AESGCM). wrapped = "CGK1" || u8 len(keyId) || keyId || nonce(12) || ciphertext(32) || tag(16); AAD = "CGK1" || u8 len || keyId || canonicalContext.', 'vectors': vectors}, indent=2, ensure_ascii=False))
