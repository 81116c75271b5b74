/** The GatewayError `promise` rejects with; fails the test when it resolves or rejects with anything else. */
import { GatewayError } from '../../src/errors/gateway-error';

export async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}
