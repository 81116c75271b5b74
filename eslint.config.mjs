// ESLint (flat config): the recommended JavaScript and typescript-eslint rules, without type-aware
// rules (linting the whole repository stays a matter of seconds on two cores). Formatting is
// prettier's alone: eslint-config-prettier turns off every rule that could disagree with it.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'coverage/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_name` marks a binding kept on purpose (a parameter a callback signature requires, a value
      // destructured away).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // Plain CommonJS scripts (examples, jest.config.js, a child-process client).
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    // A module-scoped `const crypto = require('node:crypto')` is no redeclaration of the global.
    rules: { '@typescript-eslint/no-require-imports': 'off', 'no-redeclare': ['error', { builtinGlobals: false }] },
  },
  {
    files: ['test/**/*.ts'],
    languageOptions: { globals: { ...globals.jest } },
    // The COS SDKs ship no types: tests drive them as `any`.
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  prettier,
);
