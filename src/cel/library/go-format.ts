/**
 * `string(double)` as cel-go writes it: Go's strconv.FormatFloat(d, 'g', -1, 64),
 * the shortest digits that read back the same, in exponent form when the
 * exponent is below -4 or at least 6 (`1.7e+09`, `1e-05`, `123456`).
 * JavaScript writes `1700000000` and `0.00001`.
 */
export function formatDouble(d: number): string {
  if (Number.isNaN(d)) return 'NaN';
  if (!Number.isFinite(d)) return d > 0 ? '+Inf' : '-Inf';
  if (d === 0) return Object.is(d, -0) ? '-0' : '0';
  const [mantissa, exponent] = d.toExponential().split('e');
  const exp = Number(exponent);
  if (exp < -4 || exp >= 6) return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const sign = d < 0 ? '-' : '';
  const digits = mantissa.replace(/^-/, '').replace('.', '');
  const point = exp + 1; // digits before the decimal point
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}
