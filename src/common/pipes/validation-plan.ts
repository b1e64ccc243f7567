import { TransformationType, type ClassTransformOptions } from 'class-transformer';
import { defaultOptions } from 'class-transformer/cjs/constants/default-options.constant';
import { defaultMetadataStorage } from 'class-transformer/cjs/storage';
import {
  getMetadataStorage,
  ValidationTypes,
  type ValidationArguments,
  type ValidatorOptions,
} from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata';

type DtoClass = new () => object;
type Condition = (object: object, value: unknown) => boolean;
type TransformFn = (params: {
  value: unknown;
  key: string;
  obj: Record<string, unknown>;
  type: TransformationType;
  options: ClassTransformOptions;
}) => unknown;

interface Check {
  metadata: ValidationMetadata;
  validators: Array<{ validate(value: unknown, args: ValidationArguments): unknown }>;
}

interface PropertyPlan {
  transforms: TransformFn[];
  /** `@IsOptional()` and `@ValidateIf()`: all must hold for the checks to run. */
  conditions: Condition[];
  checks: Check[];
}

/** What a DTO class asks of a payload, read once from the decorators' metadata. */
export interface ValidationPlan {
  /**
   * The DTO built from `value` when it certainly passes, exactly as
   * class-transformer and class-validator would have built and passed it;
   * undefined when it fails, or for input the plan does not cover (nested or
   * non-plain values): the full pipe then decides, and names every error.
   */
  accept(value: unknown): object | undefined;
}

/** Metadata kinds the plan reproduces; a class with any other (nested validation, …) has no plan. */
const PLANNED_TYPES = new Set<string>([
  ValidationTypes.CUSTOM_VALIDATION,
  ValidationTypes.IS_DEFINED,
  ValidationTypes.CONDITIONAL_VALIDATION,
  ValidationTypes.WHITELIST,
]);

const isPrimitive = (value: unknown) =>
  value === null || (typeof value !== 'object' && typeof value !== 'function');

/** Marks a value the plan does not copy (not plain JSON): the full pipe takes it. */
const UNPLANNED = Symbol('unplanned');

/**
 * Keys class-transformer leaves out of the plain objects it builds: a data
 * property of Object.prototype (`toString`, …), and `__proto__` and
 * `constructor`, which the validation pipe strips anyway.
 */
const DROPPED_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));

const isPlainObject = (value: object) => Object.getPrototypeOf(value) === Object.prototype;

/**
 * A property value as class-transformer copies it when no decorator types
 * it: primitives as they are, arrays and plain objects rebuilt. Anything else
 * (a Date, a Buffer, a sparse array, a class instance) is UNPLANNED.
 */
function copyOf(value: unknown): unknown {
  if (isPrimitive(value)) return value;
  if (typeof value !== 'object' || value === null) return UNPLANNED;
  if (Array.isArray(value)) {
    if (Object.keys(value).length !== value.length) return UNPLANNED;
    const copy: unknown[] = [];
    for (const item of value as unknown[]) {
      const itemCopy = copyOf(item);
      if (itemCopy === UNPLANNED) return UNPLANNED;
      copy.push(itemCopy);
    }
    return copy;
  }
  if (!isPlainObject(value)) return UNPLANNED;
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (DROPPED_KEYS.has(key)) continue;
    const fieldCopy = copyOf(field);
    if (fieldCopy === UNPLANNED) return UNPLANNED;
    copy[key] = fieldCopy;
  }
  return copy;
}

function checkOf(metadata: ValidationMetadata): Check | undefined {
  if (metadata.each) return undefined;
  const constraints = getMetadataStorage().getTargetValidatorConstraints(metadata.constraintCls);
  if (constraints.length === 0 || constraints.some((constraint) => constraint.async))
    return undefined;
  return { metadata, validators: constraints.map((constraint) => constraint.instance) };
}

/** The class-transformer side: plain copies of own keys, with `@Transform` functions and nothing else. */
function transformerIsPlain(metatype: DtoClass, properties: string[]): boolean {
  const storage = defaultMetadataStorage;
  const prototype = metatype.prototype as object;
  return (
    storage.getStrategy(metatype) === 'none' &&
    storage.getExposedProperties(metatype, TransformationType.PLAIN_TO_CLASS).length === 0 &&
    storage.getExcludedProperties(metatype, TransformationType.PLAIN_TO_CLASS).length === 0 &&
    properties.every(
      (name) =>
        !storage.findTypeMetadata(metatype, name) &&
        !Object.getOwnPropertyDescriptor(prototype, name) &&
        typeof (prototype as Record<string, unknown>)[name] !== 'function',
    )
  );
}

function propertyPlan(
  metatype: DtoClass,
  name: string,
  metadatas: ValidationMetadata[],
): PropertyPlan | undefined {
  const plan: PropertyPlan = {
    transforms: defaultMetadataStorage
      .findTransformMetadatas(metatype, name, TransformationType.PLAIN_TO_CLASS)
      .filter((metadata) => !metadata.options?.groups?.length)
      .map((metadata) => metadata.transformFn as TransformFn),
    conditions: [],
    checks: [],
  };
  for (const metadata of metadatas) {
    if (metadata.type === ValidationTypes.WHITELIST) continue;
    if (metadata.type === ValidationTypes.CONDITIONAL_VALIDATION) {
      plan.conditions.push(metadata.constraints[0] as Condition);
      continue;
    }
    const check = checkOf(metadata);
    if (!check) return undefined;
    plan.checks.push(check);
  }
  return plan;
}

/** Validator options under which the plan is exact: ours (see `createValidationPipe`). */
function optionsArePlanned(options: ValidatorOptions, transform: ClassTransformOptions): boolean {
  return (
    options.whitelist === true &&
    options.forbidNonWhitelisted === true &&
    !options.groups?.length &&
    !options.always &&
    !options.strictGroups &&
    !options.skipMissingProperties &&
    !options.skipNullProperties &&
    !options.skipUndefinedProperties &&
    !transform.enableImplicitConversion &&
    !transform.excludeExtraneousValues &&
    !transform.exposeDefaultValues &&
    transform.exposeUnsetFields !== false &&
    transform.groups === undefined &&
    transform.version === undefined &&
    !transform.excludePrefixes?.length &&
    transform.strategy === undefined
  );
}

function buildPlan(
  metatype: DtoClass,
  options: ValidatorOptions,
  transformOptions: ClassTransformOptions,
): ValidationPlan | undefined {
  if (!optionsArePlanned(options, transformOptions)) return undefined;
  const storage = getMetadataStorage();
  const metadatas = storage.getTargetValidationMetadatas(
    metatype,
    undefined as unknown as string,
    false,
    false,
    undefined,
  );
  if (metadatas.length === 0 || metadatas.some((metadata) => !PLANNED_TYPES.has(metadata.type)))
    return undefined;
  const grouped = storage.groupByPropertyName(metadatas);
  const names = Object.keys(grouped);
  // Fields a new instance has of its own are whitelisted only if they have rules.
  const ownFields = Object.keys(new metatype());
  if (ownFields.some((field) => !grouped[field]) || !transformerIsPlain(metatype, names))
    return undefined;
  const properties = new Map<string, PropertyPlan>();
  for (const name of names) {
    const plan = propertyPlan(metatype, name, grouped[name]);
    if (!plan) return undefined;
    properties.set(name, plan);
  }
  const executorOptions: ClassTransformOptions = { ...defaultOptions, ...transformOptions };
  return { accept: (value) => accept(metatype, properties, executorOptions, value) };
}

function accept(
  metatype: DtoClass,
  properties: Map<string, PropertyPlan>,
  options: ClassTransformOptions,
  value: unknown,
): object | undefined {
  if (typeof value !== 'object' || value === null || !isPlainObject(value)) return undefined;
  const plain = value as Record<string, unknown>;
  const entity = new metatype() as Record<string, unknown>;
  for (const key of Object.keys(plain)) {
    // Left out by class-transformer too, so never an unknown field.
    if (DROPPED_KEYS.has(key)) continue;
    const property = properties.get(key);
    if (!property) return undefined;
    let field = copyOf(plain[key]);
    if (field === UNPLANNED) return undefined;
    for (const transform of property.transforms)
      field = transform({
        value: field,
        key,
        obj: plain,
        type: TransformationType.PLAIN_TO_CLASS,
        options,
      });
    entity[key] = field;
  }
  for (const [name, plan] of properties) if (!passes(entity, name, plan)) return undefined;
  return entity;
}

function passes(entity: Record<string, unknown>, name: string, plan: PropertyPlan): boolean {
  const value = entity[name];
  for (const condition of plan.conditions) if (!condition(entity, value)) return true;
  for (const { metadata, validators } of plan.checks) {
    if (metadata.validateIf && !metadata.validateIf(entity, value)) continue;
    const args: ValidationArguments = {
      targetName: entity.constructor.name,
      property: metadata.propertyName,
      object: entity,
      value,
      constraints: metadata.constraints,
    };
    for (const validator of validators) {
      const valid = validator.validate(value, args);
      if (!valid || valid instanceof Promise) return false;
    }
  }
  return true;
}

const plans = new WeakMap<object, Map<DtoClass, ValidationPlan | undefined>>();

/**
 * The plan for `metatype` under the given options, built on first use.
 * Keyed by the options object too, which each pipe keeps for its lifetime.
 */
export function validationPlanFor(
  metatype: DtoClass,
  options: ValidatorOptions,
  transformOptions: ClassTransformOptions,
): ValidationPlan | undefined {
  let byClass = plans.get(options);
  if (!byClass) plans.set(options, (byClass = new Map<DtoClass, ValidationPlan | undefined>()));
  if (!byClass.has(metatype)) byClass.set(metatype, buildPlan(metatype, options, transformOptions));
  return byClass.get(metatype);
}
