import t from 'tap';
import { bearerToken } from '../../src/authn/bearer.js';

const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

const rows: ReadonlyArray<readonly [string | undefined, string | undefined | null]> = [
  [`Bearer ${jwt}`, jwt],
  [`bearer ${jwt}`, jwt],
  [`BEARER ${jwt}`, jwt],
  ['Bearer abc+/~_-.==', 'abc+/~_-.=='],
  [undefined, undefined],
  ['', undefined],
  ['Basic dXNlcjpwYXNz', undefined],
  ['Bearerx abc', undefined],
  ['Bearer', null],
  ['Bearer ', null],
  [`Bearer  ${jwt}`, null],
  [`Bearer ${jwt} `, null],
  [`Bearer ${jwt} extra`, null],
  [`Bearer\t${jwt}`, null],
  ['Bearer a=b', null],
  ['Bearer "quoted"', null],
  ['Bearer tök', null],
];

for (const [header, expected] of rows) {
  t.equal(bearerToken(header), expected, JSON.stringify(header));
}
