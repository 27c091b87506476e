// Sizes fixed by the protocol. The relay enforces them; clients must respect them.

/** Plaintext bytes per photo chunk (crypto_secretstream_xchacha20poly1305 message). */
export const PHOTO_CHUNK_PLAINTEXT_BYTES = 64 * 1024;
/** secretstream adds 17 bytes (1 tag byte + 16 MAC bytes) to every message. */
export const SECRETSTREAM_ABYTES = 17;
/** Every photo chunk on the wire has exactly this size: photos are padded to whole chunks. */
export const PHOTO_CHUNK_CIPHERTEXT_BYTES = PHOTO_CHUNK_PLAINTEXT_BYTES + SECRETSTREAM_ABYTES;
/** At most 32 MiB of padded photo: 512 chunks. */
export const MAX_PHOTO_CHUNKS = 512;

/** Most coordinator devices (recipients) a campaign's envelopes can be sealed to. */
export const MAX_RECIPIENTS = 64;

/** Every control message (wipe, notice, receipt) has exactly this many bytes on the wire. */
export const CONTROL_MESSAGE_BYTES = 1024;
