// Types of the generated validator (scripts/gen-validator.mjs): Ajv's ValidateFunction shape.
import type { ErrorObject } from 'ajv';

declare const validate: ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
export default validate;
