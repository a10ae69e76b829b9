/* SPDX-License-Identifier: Apache-2.0 */
#include "pending.h"

#include "json_util.h"

void kc_pending_add(struct kc_pending_list *l, struct kc_pending *q)
{
	q->id = ++l->next_id;
	q->next = l->head;
	l->head = q;
}

void kc_pending_remove(struct kc_pending_list *l, struct kc_pending *q)
{
	for (struct kc_pending **pp = &l->head; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
}

struct kc_pending *kc_pending_find(struct kc_pending_list *l, uint64_t id)
{
	struct kc_pending *q = l->head;
	while (q && q->id != id)
		q = q->next;
	return q;
}

bool kc_pending_complete(struct kc_pending *q, json_t *result, const struct kc_error *e)
{
	if (!q || q->done)
		return false;
	q->done = true;
	q->result = json_incref(result);
	q->err = *e;
	return true;
}

int kc_pending_outcome(struct kc_pending *q, json_t **ret_result, struct kc_error *err)
{
	if (q->result) {
		*ret_result = q->result;
		return 0;
	}
	*err = q->err;
	return -1;
}

int kc_pending_parse_response(const json_t *msg, uint64_t *ret_id, json_t **ret_result,
			      struct kc_error *ret_e, struct kc_error *err)
{
	json_t *result = json_object_get(msg, "result");
	json_t *error = json_object_get(msg, "error");

	if (kc_json_get_uint(msg, "id", true, 1, UINT64_MAX, ret_id, err) < 0)
		return -1;
	if (!result == !error)
		return kc_error_set(err, KC_ERR_INVALID,
				    "response: exactly one of \"result\" and \"error\"");
	if (error) {
		const char *code = json_string_value(json_object_get(error, "code"));
		const char *message = json_string_value(json_object_get(error, "message"));
		if (!json_is_object(error) || !code || !message)
			return kc_error_set(err, KC_ERR_INVALID,
					    "response: \"error\" must be {code, message}");
		kc_error_set(ret_e, kc_errcode_from_name(code), "%s", message);
	}
	*ret_result = result;
	return 0;
}
