// typescript-eslint's type-aware recommended rules on src/, dev/, bench/ and test/ (one
// program: tsconfig.test.json). On everywhere, for what has bitten proxies: floating and
// misused promises (a crashed or hung request path), unbound methods. Eased for this code:
// - require-await off: every hit was an `async` implementation of a Promise-returning
//   interface (close(), adapters, tap subtests), where async makes a throw a rejection;
//   a forgotten await is no-floating-promises' job.
// - prefer-promise-reject-errors: passing on a callback's own error (any/unknown) is fine.
// - no-unused-vars: `const { a: _a, ...rest } = o` is how we omit a key.
// Tests only: tap awaits what `t.test()` returns, so its PromiseWithSubtest type is
// known-safe (the rule stays on); tests read JSON bodies as `any`, so the any rules are off.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores([
    'dist/**', 'dist-dev/**', 'bench/out/**', 'coverage/**', '.tap/**',
    'node_modules/**', '.cache/**', '.dev/**', 'certs/**',
  ]),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
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
