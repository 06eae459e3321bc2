// The team's lint rules: typescript-eslint's type-aware recommended set on src/, dev/,
// bench/ and test/ (one program, tsconfig.test.json, which includes all four). The rules
// that catch what has bitten proxies before stay on everywhere: floating promises (crash
// or hang a request path), misused promises in callbacks, unbound methods.
// Off or eased, for this codebase:
// - require-await: every hit was an `async` function with no await that implements a
//   Promise-returning interface (store close(), oidc-provider adapter, tap subtests), where
//   `async` is what turns a throw into a rejection; a forgotten await is no-floating-promises'.
// - prefer-promise-reject-errors: passing on the error a callback handed us (typed any or
//   unknown by express-session) is allowed; rejecting with a literal non-Error is not.
// - no-unused-vars: `const { a: _a, ...rest } = o` is how we omit a key.
// Test files only: tap awaits the promise `t.test()` returns (its type PromiseWithSubtest
// is listed as known-safe rather than the rule turned off), and tests read JSON bodies as
// `any`, so no-explicit-any and the no-unsafe-* rules are off there.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**', 'dist-dev/**', 'bench/out/**', 'coverage/**', '.tap/**',
      'node_modules/**', '.cache/**', '.dev/**', 'certs/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }],
      }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
