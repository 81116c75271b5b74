export { EmbeddedUpstream, type EmbeddedUpstreamOptions } from './embedded-upstream';
export { S3Error } from './s3-error';
