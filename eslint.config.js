// The team's lint rules: typescript-eslint's type-aware recommended set on src/, dev/,
// bench/ and test/ (one program, tsconfig.test.json, which includes all four). The rules
// that catch what has bitten proxies before stay on everywhere: floating promises (crash
// or hang a request path), misused promises in callbacks, unbound methods.
// Test files only: tap awaits the promise `t.test()` returns (its type PromiseWithSubtest
// is listed as known-safe rather than the rule turned off), and tests read JSON bodies, so
// the no-unsafe-* rules about `any` are off there.
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
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }],
      }],
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
