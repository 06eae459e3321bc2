import t from 'tap';
import { bearerToken } from '../../src/authn/bearer.js';

const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

// kube's bearertoken.go: TrimSpace, SplitN(auth, " ", 3), parts[1] is the token, the rest is ignored.
const rows: ReadonlyArray<readonly [string | undefined, string | undefined | null]> = [
  [`Bearer ${jwt}`, jwt],
  [`bearer ${jwt}`, jwt],
  [`BEARER ${jwt}`, jwt],
  ['Bearer abc+/~_-.==', 'abc+/~_-.=='],
  [undefined, undefined],
  ['', undefined],
  ['Basic dXNlcjpwYXNz', undefined],
  ['Bearerx abc', undefined],
  ['Bearer', undefined],
  ['Bearer ', undefined],
  [`  Bearer ${jwt}\t `, jwt],
  [`\xA0Bearer ${jwt}\x85`, jwt],
  // Two spaces: the token is empty, so there is no bearer credential (kube warns, then goes on to the next authenticator).
  [`Bearer  ${jwt}`, undefined],
  [`Bearer ${jwt} `, jwt],
  // Text after the token is ignored (kube 1.37, verified against the real apiserver).
  [`Bearer ${jwt} extra`, jwt],
  [`Bearer ${jwt} extra words here`, jwt],
  // Only a space separates: a tab does not.
  [`Bearer\t${jwt}`, undefined],
  // Any characters are the token; the token authenticator refuses what it cannot read.
  ['Bearer a=b', 'a=b'],
  ['Bearer "quoted"', '"quoted"'],
];

for (const [header, expected] of rows) {
  t.equal(bearerToken(header), expected, JSON.stringify(header));
}
