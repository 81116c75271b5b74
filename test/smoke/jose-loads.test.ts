import { SignJWT } from 'jose';
test('jose loads under jest', async () => {
  const jwt = await new SignJWT({ a: 1 }).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));
  expect(jwt.split('.')).toHaveLength(3);
  expect(process.version).toMatch(/^v24\./);
});
