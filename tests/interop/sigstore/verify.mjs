// Interop check: verifies one appliance Sigstore bundle offline with the real
// @sigstore/verify, trusting only a given public key (no certs, tlog or timestamps).
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { PublicKeyDetails } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const args = process.argv.slice(2);
if (args.length !== 2) {
  console.error('usage: node verify.mjs BUNDLE.json PUBLIC_KEY.pem');
  process.exit(2);
}
const [bundlePath, pemPath] = args;

let bundleText, pemText;
try {
  bundleText = readFileSync(bundlePath, 'utf8');
  pemText = readFileSync(pemPath, 'utf8');
} catch (e) {
  console.error(`usage: cannot read input: ${e.message}`);
  process.exit(2);
}

try {
  // PEM -> DER SubjectPublicKeyInfo.
  const m = pemText.match(/-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----/);
  if (!m) throw new Error('public key file is not a PEM "PUBLIC KEY"');
  const spkiDer = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');

  // @sigstore/verify ignores keyDetails at runtime, but the protobuf type requires it.
  const key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const keyDetails =
    key.asymmetricKeyType === 'ed25519' ? PublicKeyDetails.PKIX_ED25519
    : key.asymmetricKeyType === 'ec' && curve === 'prime256v1' ? PublicKeyDetails.PKIX_ECDSA_P256_SHA_256
    : undefined;
  if (keyDetails === undefined) throw new Error(`unsupported key type ${key.asymmetricKeyType} ${curve ?? ''}`);

  const bundle = bundleFromJSON(JSON.parse(bundleText));
  const vm = bundle.verificationMaterial.content;
  if (vm.$case !== 'publicKey') throw new Error(`expected publicKey verification material, got ${vm.$case}`);
  if (bundle.content.$case !== 'dsseEnvelope') throw new Error(`expected dsseEnvelope, got ${bundle.content.$case}`);
  const hint = vm.publicKey.hint;

  const emptyTrustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot.v0.2+json',
    tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [],
  };
  const trust = toTrustMaterial(emptyTrustedRoot, { [hint]: { rawBytes: spkiDer, keyDetails } });
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  verifier.verify(toSignedEntity(bundle)); // throws VerificationError on failure

  console.log(`ok ${hint} ${bundle.content.dsseEnvelope.payloadType}`);
} catch (e) {
  console.error(`fail: ${e.code ? `${e.code}: ` : ''}${e.message}${e.fields ? ` [${e.fields.join(', ')}]` : ''}`);
  process.exit(1);
}
