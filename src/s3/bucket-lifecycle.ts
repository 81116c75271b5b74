/**
 * S3 CreateBucket and DeleteBucket: the CDCS PUT Coffer / DELETE Coffer of the coffer classes
 * (src/app/coffer-classes.ts) with S3's answers. Creating needs what PUT Coffer needs (a class admits
 * the name; the caller is one of its creators or has a "*" grant) and writes the same registration;
 * deleting needs `manage` (grant or policy), an empty created coffer, and removes it as DELETE Coffer
 * does.
 *
 * S3's answers for a name that exists (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html):
 * 409 BucketAlreadyOwnedByYou when the caller may use it (rclone and aws-cli create-if-missing and
 * take this as success), 409 BucketAlreadyExists when it is someone else's. A configured coffer the
 * caller may not use is 403 AccessDenied instead, as PUT Coffer answers: the configuration's coffers
 * are not revealed to callers without a grant on them.
 *
 * The optional body is `<CreateBucketConfiguration><LocationConstraint>…` (read with the project's
 * XML parser, src/cdcs/xml.ts). The gateway has one region (`s3.region`), so as S3 answers: a
 * constraint naming another region is 400 IllegalLocationConstraintException, and an explicit
 * `us-east-1` is 400 InvalidLocationConstraint (S3's us-east-1 is the absent or empty constraint). An
 * absent constraint is accepted in any region: the bucket can only be created in the gateway's one
 * region, so the ambiguity S3 refuses it for does not exist here.
 */
import { isAllowed } from '../auth/authorize';
import { ACTIONS, type Principal } from '../auth/principal';
import { creationOf, creatorPrincipalsFor, type CdcsOperationsDependencies, type CofferCreation } from '../cdcs/cdcs-operations';
import { parseXmlDocument } from '../cdcs/xml';
import { GatewayError, isGatewayError } from '../errors/gateway-error';
import type { CofferResolver } from '../operations/run-operation';

/** A CreateBucketConfiguration is a few hundred bytes; this caps what is read of a body. */
export const MAX_CREATE_BUCKET_BODY_BYTES = 64 * 1024;

export interface BucketLifecycleDependencies extends Pick<CdcsOperationsDependencies, 'coffers' | 'creation' | 'policyListing'> {
  readonly contexts: CofferResolver;
  readonly region: string;
}

/** Whether the caller may use the coffer: any configured grant on it, or its policy allows one of the caller's principals something. */
async function mayUse(deps: BucketLifecycleDependencies, coffer: string, principal: Principal): Promise<boolean> {
  if (ACTIONS.some((action) => isAllowed(principal.grants, coffer, action))) return true;
  if (deps.policyListing === undefined) return false;
  const principals = deps.policyListing.principalsOf(principal);
  return principals.length > 0 && deps.policyListing.mayUse(coffer, principal, principals);
}

/** The answer to creating a bucket that exists: the caller's own, or someone else's. */
async function existingBucket(deps: BucketLifecycleDependencies, coffer: string, principal: Principal): Promise<GatewayError> {
  if (await mayUse(deps, coffer, principal)) return new GatewayError('BucketAlreadyOwnedByYou', 'The bucket exists and you may use it.', { reason: 'bucket-exists' });
  return new GatewayError('BucketAlreadyExists', undefined, { reason: 'bucket-exists' });
}

/** Whether a created coffer of this name exists now (NoSuchCoffer from the resolver means no). */
async function exists(deps: BucketLifecycleDependencies, coffer: string, principal: Principal): Promise<boolean> {
  try {
    await deps.contexts.contextFor(coffer, principal);
    return true;
  } catch (error) {
    if (isGatewayError(error) && error.code === 'NoSuchCoffer') return false;
    throw error;
  }
}

export interface PreparedCreateBucket {
  readonly creation: CofferCreation;
  readonly creatorPrincipals: readonly string[];
}

/** Everything decided before the body: the name, who may create, whether it exists. */
export async function prepareCreateBucket(deps: BucketLifecycleDependencies, coffer: string, principal: Principal): Promise<PreparedCreateBucket> {
  if (deps.coffers.isConfigured(coffer)) {
    if (await mayUse(deps, coffer, principal)) throw new GatewayError('BucketAlreadyOwnedByYou', 'The bucket is a coffer configured on this gateway; it exists and you may use it.', { reason: 'configured-coffer' });
    throw new GatewayError('AccessDenied', 'The credentials do not allow creating this bucket.', { reason: 'not-a-creator' });
  }
  const creation = creationOf(deps);
  const creatorPrincipals = creatorPrincipalsFor(deps, creation, coffer, principal);
  if (await exists(deps, coffer, principal)) throw await existingBucket(deps, coffer, principal);
  return { creation, creatorPrincipals };
}

/** The CreateBucketConfiguration body (may be empty), checked against the gateway's region. */
export function checkCreateBucketConfiguration(body: Buffer, region: string): void {
  if (body.toString('utf8').trim() === '') return;
  const configuration = parseXmlDocument(body, 'CreateBucketConfiguration', []);
  for (const name of Object.keys(configuration)) {
    if (name === 'LocationConstraint' || name.startsWith('@_')) continue;
    throw new GatewayError('NotImplemented', `CreateBucketConfiguration.${name} is not implemented by this gateway (its coffer classes decide where and how a bucket is stored).`, { reason: 'bucket-configuration' });
  }
  const constraint = configuration['LocationConstraint'];
  if (constraint === undefined) return;
  if (typeof constraint !== 'string') throw new GatewayError('MalformedXML', 'LocationConstraint must be a region name.');
  if (constraint === '' || constraint === region) {
    // S3: us-east-1 is the empty constraint; naming it explicitly is refused.
    if (constraint === 'us-east-1') throw new GatewayError('InvalidLocationConstraint', undefined, { reason: 'explicit-us-east-1' });
    if (constraint === '' && region !== 'us-east-1')
      throw new GatewayError('IllegalLocationConstraintException', `The unspecified location constraint is incompatible for the region specific endpoint this request was sent to (${region}).`, { reason: 'location-constraint' });
    return;
  }
  throw new GatewayError('IllegalLocationConstraintException', `The ${constraint} location constraint is incompatible for the region specific endpoint this request was sent to (${region}).`, { reason: 'location-constraint' });
}

/** The create itself (after the body was read and checked); a concurrent create of the name is answered as an existing bucket. */
export async function createBucket(deps: BucketLifecycleDependencies, prepared: PreparedCreateBucket, coffer: string, principal: Principal): Promise<string> {
  try {
    return (await prepared.creation.create(coffer, principal, prepared.creatorPrincipals)).generation;
  } catch (error) {
    if (isGatewayError(error) && error.code === 'CofferAlreadyExists') throw await existingBucket(deps, coffer, principal);
    throw error;
  }
}
