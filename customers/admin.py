from django.contrib import admin

from customers.models import ContextEvent, Customer, CustomerIdentity


class CustomerIdentityInline(admin.TabularInline):
    model = CustomerIdentity
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "company", "plan", "last_seen_at", "created_at"]
    search_fields = ["name", "company", "identities__value"]
    inlines = [CustomerIdentityInline]
    readonly_fields = ["public_id", "last_channel", "last_seen_at", "merged_into", "created_at", "updated_at"]


@admin.register(ContextEvent)
class ContextEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "customer", "type", "source"]
    list_filter = ["type"]
    raw_id_fields = ["customer"]
