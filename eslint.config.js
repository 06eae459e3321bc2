// The team's lint rules: typescript-eslint's type-aware recommended set, plus the
// few rules that catch what has bitten proxies before (floating promises, which
// crash or hang a request path; unhandled misuse of promises in callbacks).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'bench/out/**', 'coverage/**', '.tap/**', 'node_modules/**', '.cache/**', '.dev/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
