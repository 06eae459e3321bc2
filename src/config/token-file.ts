/**
 * kube-apiserver's --token-auth-file: CSV lines `token,user,uid[,"group1,group2"]`,
 * read as k8s.io/apiserver@v0.37.2 pkg/authentication/token/tokenfile/tokenfile.go
 * reads them: Go's encoding/csv with its defaults (no comments, no trimming,
 * `""` for a quote inside quotes, a bare quote is an error, empty lines
 * skipped, CRLF read as LF) and a variable number of columns; fewer than three
 * is an error, columns past the fourth are ignored, an empty token is skipped
 * and a repeated token replaces the earlier one (both with a warning).
 *
 * Pure parsing: the config check (credential-files.ts) and the static token
 * authenticator (authn/static-tokens.ts) read the same result.
 */
import { CsvError, parse } from 'csv-parse/sync';

/** The user one token stands for, as kube's tokenfile gives it. */
export interface TokenFileUser {
  readonly username: string;
  /** Empty when the column is empty (kube then has no uid either). */
  readonly uid: string;
  readonly groups: readonly string[];
}

/** Something about one line: an error makes the file unusable, a warning does not. */
export interface TokenFileNote {
  readonly line: number;
  readonly message: string;
}

export interface TokenFile {
  /** Token → user. Never log the keys. */
  readonly tokens: ReadonlyMap<string, TokenFileUser>;
  readonly errors: readonly TokenFileNote[];
  readonly warnings: readonly TokenFileNote[];
}

interface Row {
  readonly record: string[];
  readonly info: { readonly lines: number };
}

/** Go's encoding/csv turns every CRLF into LF, inside quoted fields too. */
const goField = (field: string): string => field.replaceAll('\r\n', '\n');

/** Spaces or tabs at either end: kube keeps them, and the proxy's identity headers cannot carry them. */
const PADDED = /^[ \t]|[ \t]$/;

/**
 * Parses the file's text. Never throws: a CSV syntax error is one error with
 * the line it is on (Go's reader stops there too, and kube-apiserver refuses
 * to start).
 */
export function parseTokenFile(text: string): TokenFile {
  const errors: TokenFileNote[] = [];
  const warnings: TokenFileNote[] = [];
  const tokens = new Map<string, TokenFileUser>();
  let rows: Row[];
  try {
    rows = parse(text, {
      delimiter: ',',
      quote: '"',
      escape: '"',
      relax_column_count: true,
      relax_quotes: false,
      skip_empty_lines: true,
      record_delimiter: ['\r\n', '\n'],
      bom: false,
      info: true,
    }) as unknown as Row[];
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    const line = (err as CsvError & { lines?: number }).lines ?? 0;
    // csv-parse's message quotes the field it stopped in, which may be a token: only its kind is kept.
    errors.push({ line, message: `${csvErrorText(err.code)}; quote a field that holds a comma or a quote as "…", writing a quote inside it as ""` });
    return { tokens, errors, warnings };
  }

  for (const { record, info } of rows) {
    const line = info.lines;
    const fields = record.map(goField);
    if (fields.length < 3) {
      errors.push({ line, message: `has ${fields.length} column${fields.length === 1 ? '' : 's'}; write at least token,user,uid (uid may be empty: token,user,)` });
      continue;
    }
    const [token, username, uid, groupList] = fields;
    if (token === '') {
      warnings.push({ line, message: 'empty token: the line is skipped (kube-apiserver skips it too)' });
      continue;
    }
    if (username === '') {
      errors.push({ line, message: 'empty user name; write the user in the second column' });
      continue;
    }
    // kube splits on "," alone; an empty piece would be a group named "", which grants nothing and cannot be forwarded.
    const groups = groupList === undefined ? [] : groupList.split(',').filter((g) => g !== '');
    const padded = [username, uid, ...groups].find((value) => PADDED.test(value));
    if (padded !== undefined) {
      errors.push({ line, message: `${JSON.stringify(padded)} has a space or tab at one end, which kube keeps as part of the name; remove it (groups are split on commas only: "a,b", not "a, b")` });
      continue;
    }
    if (tokens.has(token)) warnings.push({ line, message: 'repeats the token of an earlier line; this line wins (as in kube-apiserver)' });
    tokens.set(token, { username, uid, groups });
  }
  return { tokens, errors, warnings };
}

function csvErrorText(code: string): string {
  switch (code) {
    case 'INVALID_OPENING_QUOTE':
      return 'a quote inside a field that does not start with one (Go\'s encoding/csv: bare " in non-quoted field)';
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'text after the closing quote of a quoted field (Go\'s encoding/csv: extraneous " in field)';
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted field is never closed';
    default:
      return `not valid CSV (${code})`;
  }
}
