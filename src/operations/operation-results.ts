/**
 * The result documents operations answer with, as data. Each dialect renders them in its own XML
 * (CDCS: src/cdcs/cdcs-responses.ts `renderCdcsResult`); an operation never builds XML itself.
 */
import type { completeResult, listCoffersResult, listObjectsResult, listPartsResult, listUploadsResult } from '../cdcs/cdcs-responses';

export type OperationResult =
  | { readonly kind: 'InitiateMultipartUpload'; readonly coffer: string; readonly key: string; readonly uploadId: string }
  | ({ readonly kind: 'ListParts' } & Parameters<typeof listPartsResult>[0])
  | ({ readonly kind: 'CompleteMultipartUpload' } & Parameters<typeof completeResult>[0])
  | ({ readonly kind: 'ListMultipartUploads' } & Parameters<typeof listUploadsResult>[0])
  | ({ readonly kind: 'ListObjects' } & Parameters<typeof listObjectsResult>[0])
  | ({ readonly kind: 'ListCoffers' } & Parameters<typeof listCoffersResult>[0]);
