/**
 * CompleteMultipartUpload can run for minutes: staged 1 MB parts are copied into upstream parts, and an
 * upstream completing thousands of parts takes its time. Clients and load balancers drop a connection
 * that is silent that long — and a dropped Complete is retried, repeating the copy. So, as S3 and COS
 * do, once assembly has run for `intervalMs` the gateway commits to `200 OK`, sends the XML declaration,
 * then one space every `intervalMs`, and finally the result element — or an `<Error>` element, which the
 * official SDK treats as an error for a 2xx Complete (cdcs-api.md). Whitespace between the declaration
 * and the root element is legal XML, so every parser reads the final document unchanged.
 *
 * Until the first byte goes out nothing is committed: a Complete that finishes (or fails) quickly is
 * answered exactly as before, with its real status code.
 */
import type { ServerResponse } from 'node:http';
import { XML_PROLOGUE as DECLARATION } from '../cdcs/xml';

export interface KeepAliveAnswer {
  /** Starts the clock (call when the slow phase begins; calls after the first are ignored). */
  begin(): void;
  /** True once the 200 status line is out: the outcome can only be told in the body now. */
  readonly committed: boolean;
  /**
   * Ends the answer with `document` (a whole XML document, declaration included): as a normal answer
   * with `status` if nothing was committed, else as the rest of the already-started 200 body.
   */
  end(document: string, status: number): void;
  /** Stops the clock without answering (the caller answers, or the request failed before commit). */
  cancel(): void;
}

/** `onCommit` runs once, when the 200 goes out (metrics). */
export function keepAliveAnswer(res: ServerResponse, intervalMs: number, onCommit?: () => void): KeepAliveAnswer {
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let committed = false;
  const stop = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  const tick = (): void => {
    if (res.destroyed || res.writableEnded) return stop();
    if (!committed) {
      committed = true;
      // Chunked: the final length is unknown. No Content-Length, so the whitespace needs no accounting.
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.write(`${DECLARATION}\n`);
      onCommit?.();
    } else {
      res.write(' ');
    }
    timer = setTimeout(tick, intervalMs);
  };
  res.once('close', stop);
  return {
    begin() {
      if (started) return;
      started = true;
      timer = setTimeout(tick, intervalMs);
    },
    get committed() {
      return committed;
    },
    end(document, status) {
      stop();
      if (!committed) {
        res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(document) }).end(document);
        return;
      }
      res.end(document.startsWith(DECLARATION) ? document.slice(DECLARATION.length) : document);
    },
    cancel: stop,
  };
}
