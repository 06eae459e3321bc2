/**
 * kube-apiserver's CEL environments for authentication expressions
 * (k8s.io/apiserver pkg/authentication/cel/compile.go): one with `claims`
 * (map(string, dyn): the verified JWT payload), one with `user`
 * (kubernetes.UserInfo: username, uid, groups, extra). kube compiles them in
 * its StoredExpressions environment, which holds every library of its base
 * environment (pkg/cel/environment/base.go) not removed by 1.37: optional
 * types, homogeneous aggregate literals, cross-type numeric comparisons, and
 * the libraries below, added to cel-js function by function. What kube has
 * and we do not is refused at load (./refused.ts).
 */
import { Environment } from '@marcbachmann/cel-js';
import { registerComprehensions } from './library/comprehensions.js';
import { registerFormat } from './library/format.js';
import { registerIP } from './library/ip.js';
import { registerLists } from './library/lists.js';
import { registerOptionals } from './library/optionals.js';
import { registerQuantity } from './library/quantity.js';
import { registerRegex } from './library/regex.js';
import { registerSemver } from './library/semver.js';
import { registerSets } from './library/sets.js';
import { registerStrings } from './library/strings.js';
import { registerURL } from './library/url.js';

/** The variable an expression reads. */
export type CelVariable = 'claims' | 'user';

/** Limits the parser enforces (cel-go's defaults as kube uses them: 100k code points, recursion 250). */
const LIMITS = { maxAstNodes: 10_000, maxDepth: 250 };

function base(): Environment {
  const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: true, limits: LIMITS });
  registerStrings(env);
  registerLists(env);
  registerSets(env);
  registerRegex(env);
  registerComprehensions(env);
  registerIP(env);
  registerURL(env);
  registerSemver(env);
  registerQuantity(env);
  registerFormat(env);
  registerOptionals(env);
  return env;
}

let environments: Record<CelVariable, Environment> | undefined;

/** The environment for expressions over `variable`; built once. */
export function environmentFor(variable: CelVariable): Environment {
  environments ??= {
    claims: base().registerVariable('claims', 'map<string, dyn>'),
    user: base().registerVariable({
      name: 'user',
      schema: { username: 'string', uid: 'string', groups: 'list<string>', extra: 'map<string, list<string>>' },
    }),
  };
  return environments[variable];
}
