/**
 * The two upstream objects of one coffer object — its manifest `m/<K>` and its data object
 * `d/<K>/<uploadId>` — downloaded to local files, served as a read-only store. Offline decryption runs
 * the gateway's own read path (MultipartService.head + read) over it, so it verifies exactly what the
 * gateway verifies: manifest MAC and layout, the data object's length, every part header and segment.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import type { ObjectBody, UploadStore } from '../store/ports';
import { UpstreamNotFoundError } from '../upstream/upstream-store';
import { CliError } from './cli-coffer';

export interface DownloadedObject {
  /** Upstream key of the manifest (layout.manifest(key)) and the file holding it. */
  readonly manifestKey: string;
  readonly manifestFile: string;
  /** Upstream prefix of the key's data objects (layout.dataPrefix(key)) and the file holding the one the manifest names. */
  readonly dataPrefix: string;
  readonly dataFile: string;
}

function unavailable(): never {
  throw new CliError('Only reading is possible from downloaded files.');
}

export function downloadedObjectStore(files: DownloadedObject): UploadStore {
  const fileFor = (key: string): string => {
    if (key === files.manifestKey) return files.manifestFile;
    if (key.startsWith(files.dataPrefix)) return files.dataFile;
    throw new UpstreamNotFoundError('NoSuchKey');
  };
  return {
    async getObject(key: string, range?: { start: number; endExclusive: number }): Promise<ObjectBody> {
      const file = fileFor(key);
      let stat: Awaited<ReturnType<typeof fs.stat>>;
      try {
        stat = await fs.stat(file);
      } catch (error) {
        throw new CliError(`Cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`);
      }
      if (!stat.isFile()) throw new CliError(`${file} is not a regular file.`);
      // Like an S3 ranged GET: clipped at the end of the object; the reader checks the total length.
      const start = range?.start ?? 0;
      const endExclusive = Math.min(range?.endExclusive ?? stat.size, stat.size);
      const size = Math.max(0, endExclusive - start);
      const body = size === 0 ? Readable.from([]) : createReadStream(file, { start, end: endExclusive - 1 });
      return { body, size, totalSize: stat.size, lastModified: stat.mtime };
    },
    headObject: unavailable,
    createMultipartUpload: unavailable,
    uploadPart: unavailable,
    listParts: unavailable,
    completeMultipartUpload: unavailable,
    abortMultipartUpload: unavailable,
    putObject: unavailable,
    listObjects: unavailable,
    deleteObjects: unavailable,
  };
}
