/** Names that travel in messages and twin keys (twin keys may not contain `.`, `$`, space). */
import { z } from 'zod';

export const TA_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const COMMAND_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Request and session ids share one alphabet. */
export const WIRE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const taName = z.string().regex(TA_NAME, 'must be 1-64 chars of a-z 0-9 _ - starting with a letter or digit');
export const commandName = z.string().regex(COMMAND_NAME, 'must be an identifier of up to 64 chars');
export const requestId = z.string().regex(WIRE_ID, 'must be 1-128 chars of A-Z a-z 0-9 . _ : -');
export const sessionId = z.string().regex(WIRE_ID, 'must be 1-128 chars of A-Z a-z 0-9 . _ : -');
export const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (SHA-256)');
